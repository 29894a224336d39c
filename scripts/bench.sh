#!/usr/bin/env bash
# Every benchmark in one run, written to build/bench.json (scripts/bench/all.py): abmll's meta-step against the
# Python reference on the CPU (tiny and ~100M models), evaluation throughput with the shared prompt against one row
# per option, and, when a GPU is present and --cpu-only is not given, the meta-step at the Llama-3-8B shape (bf16,
# random weights) with its model FLOP utilisation and peak memory. Installs and builds what is missing first
# (scripts/setup.sh). Not a test.
#   ./scripts/bench.sh [--cpu-only] [--models tiny,100m]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh" >&2
build_dir=${ABMLL_BUILD_DIR:-$root/build}
venv=$(cat "$build_dir/.abmll-venv")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
exec "$venv/bin/python" "$root/scripts/bench/all.py" --abmll "$build_dir/abmll" --out "$build_dir/bench.json" "$@"
