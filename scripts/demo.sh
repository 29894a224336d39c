#!/usr/bin/env bash
# The main job on the embedded default: builds abmll if needed (scripts/setup.sh), then runs
# `abmll meta-train` with configs/demo.yaml into runs/demo/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
build_dir=${ABMLL_BUILD_DIR:-build}
exec "$build_dir/abmll" meta-train --config configs/demo.yaml --out runs/demo/meta-train "$@"
