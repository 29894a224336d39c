#!/usr/bin/env bash
# The demo's comparison, given a built abmll: the built-in tiny model and synthetic tasks (`abmll make-demo`),
# meta-training of ABMLL and of the baselines that learn across tasks (configs/demo.yaml), evaluation of every
# method on the held-out tasks at the same number of adaptation steps, and the table and reliability figure
# (`abmll report`).
#
#   scripts/demo_pipeline.sh ABMLL OUT [--steps N] [--seeds "0 1 2"]
#
# OUT/table.md (and .csv) is the table; OUT/plots/ the methods' reliability diagrams in one figure; OUT/eval/
# <method>-seed<S>/ holds each report.json, predictions.jsonl and reliability.svg; OUT/train/<method>-seed<S>/ each
# meta-training run. --steps caps meta-training (for quick checks).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abmll=$1 out=$2
shift 2
steps="" seeds="0 1 2"
while [ $# -gt 0 ]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    *) echo "demo_pipeline: unknown argument $1" >&2; exit 2 ;;
  esac
done
config="$root/configs/demo.yaml"
# The demo model is tiny: one thread per process is faster than LibTorch's default of one per core, by far when
# other jobs share the cores (their threads spin-wait on each other).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
say() { echo "[demo] $*" >&2; }

rm -rf "$out"
"$abmll" make-demo --out "$out"
paths=(--set "model.path=$out/model" --set "data.path=$out/data" --set "data.partition=$out/data/partitions/demo.json")
max_steps=()
[ -n "$steps" ] && max_steps=(--max-steps "$steps")

for seed in $seeds; do
  for method in abmll fomaml reptile lora; do
    say "meta-train $method (seed $seed)"
    "$abmll" meta-train --config "$config" "${paths[@]}" --set "method=$method" --set "run.seed=$seed" \
      "${max_steps[@]}" --out "$out/train/$method-seed$seed"
  done
  # Every method on the same held-out episodes, adapting for inner.eval_steps steps where it adapts.
  for method in pretrained icl lora-scratch lora reptile fomaml abmll abmll_icl; do
    args=()
    case $method in
      pretrained | icl) args=(--set "method=$method") ;;
      lora-scratch) args=(--set method=lora) ;;
      abmll_icl) args=(--set method=abmll_icl --checkpoint "$(ls -v "$out/train/abmll-seed$seed"/checkpoints/*.safetensors | tail -1)") ;;
      *) args=(--set "method=$method" --checkpoint "$(ls -v "$out/train/$method-seed$seed"/checkpoints/*.safetensors | tail -1)") ;;
    esac
    say "evaluate $method (seed $seed)"
    "$abmll" evaluate --config "$config" "${paths[@]}" --set "run.seed=$seed" "${args[@]}" \
      --out "$out/eval/$method-seed$seed/report.json"
  done
done
"$abmll" report "$out/eval" --out "$out/table.md" --plots "$out/plots"
say "table: $out/table.md (CSV beside it); the methods' reliability compared in $out/plots/; reports, predictions" \
  "and reliability diagrams under $out/eval/"
