#!/usr/bin/env bash
# Fuzzes the safetensors header and index parsers with libFuzzer (+ AddressSanitizer, UBSan) for N seconds
# (default 60). Builds fuzz/ with clang in build-fuzz/, keeps its growing corpus in fuzz/corpus-work/ (git-ignored),
# seeded from fuzz/corpus/safetensors and the regression corpus tests/data/safetensors_corpus.
# Findings (crashes, leaks, timeouts, allocations over 256 MB) are written to build-fuzz/findings/: fix the parser,
# then copy each finding into tests/data/safetensors_corpus/ so the unit tests replay it forever.
#
#   scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
seconds=${1:-60}
shift || true
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-fuzz
jobs=${ABMLL_JOBS:-2}

CC=clang CXX=clang++ cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs"

mkdir -p "$root/fuzz/corpus-work" "$build/findings"
# The first folder receives new interesting inputs; the others are read-only seeds.
"$build/safetensors_header_fuzz" \
  -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
  -dict="$root/fuzz/safetensors.dict" -artifact_prefix="$build/findings/" -print_final_stats=1 "$@" \
  "$root/fuzz/corpus-work" "$root/fuzz/corpus/safetensors" "$root/tests/data/safetensors_corpus"
