#!/usr/bin/env bash
# Forward-pass benchmark, abmll vs transformers on CPU (float32 and bfloat16): builds abmll_bench in the build
# folder (ABMLL_BUILD_DIR, default build) and runs scripts/bench/forward.py with the pinned venv's Python. The model
# (random weights, ~125M parameters, ~500 MB) is written once to ~/.cache/abmll/bench/. Not a test.
# Extra arguments go to forward.py, e.g. ./scripts/bench_forward.sh --runs 9 --dtypes float32
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${ABMLL_BUILD_DIR:-$root/build}
# The pinned environment's Python, as scripts/setup.sh configured the build with it.
python=${ABMLL_PYTHON:-$(sed -n 's/^ABMLL_PYTHON:FILEPATH=//p' "$build_dir/CMakeCache.txt" 2>/dev/null)}
[ -x "$python" ] || { echo "no Python at $python: run scripts/setup.sh or set ABMLL_PYTHON" >&2; exit 2; }
"$(dirname "$python")/cmake" --build "$build_dir" --target abmll_bench -j "${ABMLL_BUILD_JOBS:-2}" >&2
exec "$python" "$root/scripts/bench/forward.py" --bin "$build_dir/abmll_bench" "$@"
