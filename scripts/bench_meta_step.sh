#!/usr/bin/env bash
# Meta-training step benchmark, abmll against a Python reference of the same ABMLL step (scripts/bench/meta_step.py),
# on the demo's tiny model and a ~100M-parameter Llama-shaped model with random weights (written once to
# ~/.cache/abmll/bench/meta-step/), 4 tasks x (8 support + 8 query) sequences, K = 3, one Monte Carlo sample, float32,
# CPU. Both sides run with OMP_NUM_THREADS threads (default: all cores). Not a test.
# Extra arguments go to meta_step.py, e.g. ./scripts/bench_meta_step.sh --models tiny --steps 9
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${ABMLL_BUILD_DIR:-$root/build}
python=${ABMLL_PYTHON:-$(sed -n 's/^ABMLL_PYTHON:FILEPATH=//p' "$build_dir/CMakeCache.txt" 2>/dev/null)}
[ -x "$python" ] || { echo "no Python at $python: run scripts/setup.sh or set ABMLL_PYTHON" >&2; exit 2; }
[ -x "$build_dir/abmll" ] || { echo "no $build_dir/abmll: run scripts/setup.sh" >&2; exit 2; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
exec "$python" "$root/scripts/bench/meta_step.py" --abmll "$build_dir/abmll" "$@"
