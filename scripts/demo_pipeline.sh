#!/usr/bin/env bash
# The demo's comparison, given a built abmll: the built-in tiny model and synthetic tasks (`abmll make-demo`),
# meta-training of ABMLL and of the baselines that learn across tasks (configs/demo.yaml; LoRA also with dropout, for
# MC dropout), evaluation of every method on the held-out tasks at the same number of adaptation steps, the table and
# reliability figure (`abmll report`), and one held-out task's posterior predictions for new queries (`abmll adapt`,
# `abmll predict`).
#
#   scripts/demo_pipeline.sh ABMLL OUT [--steps N] [--seeds "0 1 2"]
#
# OUT/table.md (and .csv) is the table, with each method's paired differences from lora (also in
# table.paired.json); OUT/plots/ the methods' reliability diagrams in one figure; OUT/eval/
# <method>-seed<S>/ holds each report.json, predictions.jsonl and reliability.svg; OUT/train/<method>-seed<S>/ each
# meta-training run; OUT/adapt/TASK/ the first held-out task's posterior and OUT/predict/TASK/ its predictions for
# every letter. --steps caps meta-training (for quick checks).
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

# MC dropout, the Bayesian baseline of regular LoRA: trained and adapted with dropout on the adapter's input, scored
# by averaging eval.samples forwards with their own masks.
mc_dropout=(--set method=lora --set lora.dropout=0.1)
for seed in $seeds; do
  for method in abmll fomaml reptile lora lora-dropout; do
    say "meta-train $method (seed $seed)"
    args=(--set "method=$method")
    [ "$method" = lora-dropout ] && args=("${mc_dropout[@]}")
    "$abmll" meta-train --config "$config" "${paths[@]}" "${args[@]}" --set "run.seed=$seed" \
      "${max_steps[@]}" --out "$out/train/$method-seed$seed"
  done
  # Every method on the same held-out episodes, adapting for inner.eval_steps steps where it adapts.
  for method in pretrained icl lora-scratch lora lora-mc reptile fomaml abmll abmll_icl; do
    args=()
    case $method in
      pretrained | icl) args=(--set "method=$method") ;;
      lora-scratch) args=(--set method=lora) ;;
      lora-mc) args=("${mc_dropout[@]}" --set eval.mc_dropout=true
                     --checkpoint "$(ls -v "$out/train/lora-dropout-seed$seed"/checkpoints/*.safetensors | tail -1)") ;;
      abmll_icl) args=(--set method=abmll_icl --checkpoint "$(ls -v "$out/train/abmll-seed$seed"/checkpoints/*.safetensors | tail -1)") ;;
      *) args=(--set "method=$method" --checkpoint "$(ls -v "$out/train/$method-seed$seed"/checkpoints/*.safetensors | tail -1)") ;;
    esac
    say "evaluate $method (seed $seed)"
    "$abmll" evaluate --config "$config" "${paths[@]}" --set "run.seed=$seed" "${args[@]}" \
      --out "$out/eval/$method-seed$seed/report.json"
  done
done
"$abmll" report "$out/eval" --out "$out/table.md" --plots "$out/plots" --baseline lora

# The first held-out task's posterior under the first seed's prior, and its predictions, with their uncertainty,
# for every letter as a new query (no answers given).
seed=${seeds%% *}
task=$(awk '/"test"/ { listed = 1; next } listed && /"/ { gsub(/[ ",]/, ""); print; exit }' \
  "$out/data/partitions/demo.json")
say "adapt abmll to $task, then predict (seed $seed)"
"$abmll" adapt --config "$config" "${paths[@]}" --set "run.seed=$seed" \
  --checkpoint "$(ls -v "$out/train/abmll-seed$seed"/checkpoints/*.safetensors | tail -1)" --task "$task" \
  --out "$out/adapt/$task"
mkdir -p "$out/predict"
for letter in a b c d e f g h i j k l m n o p q r s t u v w x y z; do
  printf '{"input": "letter: %s"}\n' "$letter"
done > "$out/predict/letters.jsonl"
"$abmll" predict --config "$config" "${paths[@]}" --set "run.seed=$seed" --adapted "$out/adapt/$task" \
  --input "$out/predict/letters.jsonl" --out "$out/predict/$task"
say "table: $out/table.md (CSV beside it); the methods' reliability compared in $out/plots/; reports, predictions" \
  "and reliability diagrams under $out/eval/; $task's predictions for new queries in $out/predict/$task/"
