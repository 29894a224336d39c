#!/usr/bin/env bash
# Builds abmll (installing what is missing, via scripts/setup.sh) and runs every test through CTest: the C++ unit
# tests and the tests against the reference implementations (Python, pinned virtual environment).
# Extra arguments go to ctest, e.g. ./scripts/test.sh -R config
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
build_dir=${ABMLL_BUILD_DIR:-build}
jobs=${ABMLL_TEST_JOBS:-$(nproc)}
venv=$(cat "$build_dir/.abmll-venv")
# Tests run side by side (-j) on small models: one intra-op thread each, or the processes' thread pools fight over
# the cores and spin-wait on each other (several times slower on a loaded 2-core machine).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$venv/bin/ctest" --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@"
