#!/usr/bin/env bash
# The main job on the embedded default, on CPU and with nothing downloaded: builds abmll if needed
# (scripts/setup.sh), then runs a small version of the paper's comparison end to end (scripts/demo_pipeline.sh):
# the built-in tiny Llama-architecture model and synthetic few-shot tasks, meta-training of ABMLL and the
# baselines, evaluation of every method on the held-out tasks, and the table. Everything lands in runs/demo/
# (replaced on each run). Extra arguments go to the pipeline (e.g. --steps 10, --seeds "0").
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
"$root/scripts/demo_pipeline.sh" "${ABMLL_BUILD_DIR:-build}/abmll" runs/demo "$@"
