#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input with libFuzzer (+ AddressSanitizer, UBSan), SECONDS (default 60) per target:
#   safetensors  safetensors headers and shard indexes
#   tokenizer    tokenizer.json files, and text round-tripped through Llama-3 / Qwen2-style tokenizers
#   task_files   CrossFit, UnifiedQA and JSONL task files, partition files, query files (predict)
#   config       YAML configs and --set overrides, and their resolved YAML read back
#   json_files   a model's config.json; predictions files and the calibration metrics computed from them;
#                evaluation reports as `abmll report` reads them, and the reliability figures drawn from them
#   episodes     episode sampling from a JSONL task, prompts fitted to max_length tokens
#   adapter_config  PEFT adapter_config.json files, and the file abmll writes for what they read into
# Builds fuzz/ with clang in build-fuzz/ and keeps each target's growing corpus in fuzz/corpus-work/<target>/
# (git-ignored), seeded from fuzz/corpus/<target> and the regression corpus tests/data/<target>_corpus.
# Findings (crashes, broken round trips or invariants, leaks, timeouts, allocations over 256 MB) are written to
# build-fuzz/findings/<target>-*: fix the code, then copy each finding into tests/data/<target>_corpus/ so the unit
# tests replay it forever (test_safetensors_malformed.cpp, test_fuzz_corpora.cpp). Exits 1 when a target found one.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]          (default: every target)
#   ABMLL_FUZZ_FLAGS="-jobs=2" scripts/fuzz.sh     (extra libFuzzer flags)
set -euo pipefail
seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(safetensors tokenizer task_files config json_files episodes adapter_config)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-fuzz
jobs=${ABMLL_JOBS:-2}

CC=clang CXX=clang++ cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs"

mkdir -p "$build/findings"
failed=()
for target in "${targets[@]}"; do
  case $target in
    safetensors) binary=safetensors_header_fuzz; flags=(-max_len=16384 -dict="$root/fuzz/safetensors.dict") ;;
    tokenizer) binary=tokenizer_fuzz; flags=(-max_len=16384) ;;
    task_files) binary=task_files_fuzz; flags=(-max_len=4096) ;;
    config) binary=config_fuzz; flags=(-max_len=4096) ;;
    json_files) binary=json_files_fuzz; flags=(-max_len=4096) ;;
    episodes) binary=episodes_fuzz; flags=(-max_len=4096) ;;
    adapter_config) binary=adapter_config_fuzz; flags=(-max_len=4096) ;;
    *) echo "fuzz.sh: unknown target '$target' (safetensors tokenizer task_files config json_files episodes" \
         "adapter_config)" >&2
       exit 2 ;;
  esac
  work=$root/fuzz/corpus-work/$target
  mkdir -p "$work"
  # The first folder receives new interesting inputs; the others are read-only seeds (the regression folder exists
  # once the target has found something).
  corpora=("$work" "$root/fuzz/corpus/$target")
  [[ -d "$root/tests/data/${target}_corpus" ]] && corpora+=("$root/tests/data/${target}_corpus")
  echo "== $target: $seconds s"
  # shellcheck disable=SC2086
  if ! "$build/$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
      -artifact_prefix="$build/findings/$target-" -print_final_stats=1 "${flags[@]}" ${ABMLL_FUZZ_FLAGS:-} \
      "${corpora[@]}"; then
    failed+=("$target")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: findings from: ${failed[*]} (in $build/findings/)" >&2
  exit 1
fi
