#!/usr/bin/env bash
# Forward-pass benchmark, abmll vs transformers on CPU (float32 and bfloat16): builds abmll_bench in the build
# folder (ABMLL_BUILD_DIR, default build) and runs scripts/bench/forward.py with the pinned venv's Python. The model
# (random weights, ~125M parameters, ~500 MB) is written once to ~/.cache/abmll/bench/. Not a test.
# Extra arguments go to forward.py, e.g. ./scripts/bench_forward.sh --runs 9 --dtypes float32
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${ABMLL_BUILD_DIR:-$root/build}
cache_dir=${ABMLL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/abmll}
python=${ABMLL_PYTHON:-$cache_dir/venv-$(sha256sum "$root/scripts/requirements.txt" | cut -c1-12)/bin/python}
[ -x "$python" ] || { echo "no Python at $python: run scripts/setup.sh or set ABMLL_PYTHON" >&2; exit 2; }
cmake --build "$build_dir" --target abmll_bench -j "${ABMLL_BUILD_JOBS:-2}" >&2
exec "$python" "$root/scripts/bench/forward.py" --bin "$build_dir/abmll_bench" "$@"
