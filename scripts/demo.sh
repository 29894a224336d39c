#!/usr/bin/env bash
# The main job on the embedded default, on CPU and with nothing downloaded: builds abmll if needed
# (scripts/setup.sh), writes the built-in tiny Llama model and synthetic few-shot tasks (`abmll make-demo`), then
# meta-trains ABMLL on them with configs/demo.yaml. Everything lands in runs/demo/ (replaced on each run).
# Extra arguments go to `abmll meta-train` (e.g. --max-steps 10).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
abmll="${ABMLL_BUILD_DIR:-build}/abmll"
rm -rf runs/demo
"$abmll" make-demo --out runs/demo
"$abmll" meta-train --config configs/demo.yaml --out runs/demo/meta-train "$@"
echo "demo: metrics in runs/demo/meta-train/metrics.jsonl, report in runs/demo/meta-train/report.json," \
     "PEFT adapter in runs/demo/meta-train/adapter/" >&2
