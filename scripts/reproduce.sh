#!/usr/bin/env bash
# Reproduces the paper's tables: for every cell of a table (configs/paper/cells.tsv: benchmark x model x method)
# and every seed, `abmll meta-train` where the method learns across tasks, `abmll evaluate` with the run's last
# (or best validated) checkpoint, then `abmll report` over the evaluation reports (mean ± std over seeds, the
# paper's ABMLL numbers beside ours, each method's paired differences from regular LoRA). On one machine, one job
# after another, or as a Slurm job array (--slurm).
#
#   scripts/reproduce.sh TABLE [--models DIR] [--data DIR] [--seeds "42 43 44"] [--out runs/paper]
#                        [--only REGEX] [--set KEY=VALUE ...] [--checkpoint last|best] [--abmll BIN] [--slurm]
#                        [--dry-run]
#
# TABLE: main (CrossFit cls-23, cls-45, NLI, Para; UnifiedQA MCQA), icl (LegalBench, ChemBench), or all.
# --models DIR   holds the Hugging Face folders Meta-Llama-3-8B/ and Qwen2-7B/ (default: models)
# --data DIR     holds crossfit/ (with partitions/), unifiedqa/, legalbench/ and chembench/ as the converters of
#                scripts/data/ write them (default: data); only the folders a table needs must exist. LegalBench
#                and ChemBench are split into training and held-out tasks first, into DIR/data/ of --out
#                (scripts/paper/prepare_split.py; the paper's split is not known)
# --seeds LIST   run.seed values, space-separated (default: "42 43 44")
# --out DIR      runs go to DIR/BENCHMARK/MODEL/seed-S/{TRAIN-train/,METHOD/report.json}; the table to
#                DIR/TABLE.md and DIR/TABLE.csv (paired differences in DIR/TABLE.paired.json), its reliability
#                diagrams to DIR/TABLE-plots/ (default: runs/paper)
# --only REGEX   keep the cells whose "benchmark/model/method" matches (grep -E), e.g. 'cls-45/llama3-8b/'
# --set K=V      passed to every abmll meta-train and evaluate (repeatable), e.g. --set run.device=cuda:1
# --checkpoint   which checkpoint of a training run is evaluated: last (default), or best: meta-training validates
#                on the held-out tasks' dev splits (validation.every 100 unless a --set gives it) and the
#                checkpoint of the best validation (checkpoints/best.safetensors) is evaluated on their test splits
# --abmll BIN    the abmll binary (default: $ABMLL_BIN, else build/abmll)
# --slurm        submit the jobs as a Slurm job array instead of running them (see "Slurm" below)
# --dry-run      print the commands (and, with --slurm, the job list and the sbatch calls) without running them
#
# A job is one meta-training run and the evaluations that use its checkpoint (abmll_icl evaluates abmll's prior),
# or one evaluation of a method that trains nothing (pretrained, icl). Jobs skip what is already done (the final
# checkpoint, a report), and meta-train and evaluate run with --resume: re-running the same command continues an
# interrupted reproduction. A job that fails does not stop the others; the script then exits 1 after writing the table of what
# finished.
#
# Slurm: the jobs are written one per line to DIR/slurm/TABLE-jobs.txt; each line is a complete bash command to
# run from the repository root. Then
#   sbatch --parsable --chdir=ROOT --job-name=abmll-TABLE --array=1-N --output=DIR/slurm/%x-%A_%a.log \
#          scripts/slurm/array.sbatch DIR/slurm/TABLE-jobs.txt
# where array task I runs line I (1-based) of the list file, and a report job that depends on the whole array
# (afterany) renders the table. Cluster options (partition, account, GPUs, time) come from the cluster script's
# #SBATCH lines or from sbatch's own environment variables (SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_GRES, ...).
#
# Exit codes: 0 done, 1 a job failed, 2 bad usage (unknown table or option, missing model or data folder).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CELLS="$ROOT/configs/paper/cells.tsv"

usage() { sed -n '7,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }
die() { echo "reproduce.sh: error: $*" >&2; exit 2; }
# An absolute path for a path given relative to the caller's folder.
absolute() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
# Words quoted for bash, space-separated: the form of every command printed or written to a job list.
quote() { local out="" w; for w in "$@"; do out+="${out:+ }$(printf '%q' "$w")"; done; printf '%s\n' "$out"; }

# --- Arguments
[ $# -ge 1 ] || { usage; die "missing TABLE (main, icl or all)"; }
case "$1" in
  -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
  main|icl|all) TABLE="$1" ;;
  *) usage; die "unknown table '$1' (main, icl or all)" ;;
esac
shift
MODELS=models DATA=data SEEDS="42 43 44" OUT=runs/paper ONLY="" SLURM=0 DRY_RUN=0 SELECT=last
ABMLL="${ABMLL_BIN:-$ROOT/build/abmll}"
EXTRA=()
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --models) need_value "$@"; MODELS="$2"; shift 2 ;;
    --data) need_value "$@"; DATA="$2"; shift 2 ;;
    --seeds) need_value "$@"; SEEDS="$2"; shift 2 ;;
    --out) need_value "$@"; OUT="$2"; shift 2 ;;
    --only) need_value "$@"; ONLY="$2"; shift 2 ;;
    --set) need_value "$@"; [[ "$2" == *=* ]] || die "--set $2: expected KEY=VALUE"; EXTRA+=(--set "$2"); shift 2 ;;
    --abmll) need_value "$@"; ABMLL="$2"; shift 2 ;;
    --checkpoint) need_value "$@"; SELECT="$2"; shift 2
      [[ "$SELECT" == last || "$SELECT" == best ]] || die "--checkpoint: expected last or best, got '$SELECT'" ;;
    --slurm) SLURM=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    *) usage; die "unknown option '$1'" ;;
  esac
done
for seed in $SEEDS; do [[ "$seed" =~ ^[0-9]+$ ]] || die "--seeds: '$seed' is not a non-negative integer"; done
[ -n "${SEEDS// /}" ] || die "--seeds: no seeds given"
MODELS="$(absolute "$MODELS")" DATA="$(absolute "$DATA")" OUT="$(absolute "$OUT")"
[[ "$ABMLL" == */* ]] && ABMLL="$(absolute "$ABMLL")"
[ -f "$CELLS" ] || die "$CELLS is missing (python3 scripts/paper/make_configs.py writes it)"
cd "$ROOT"

# outer.steps as the runs will see it (a --set wins), to name the final checkpoint.
STEPS_OVERRIDE="" VALIDATION_GIVEN=0
for ((i = 1; i < ${#EXTRA[@]}; i += 2)); do
  case "${EXTRA[i]}" in
    outer.steps=*) STEPS_OVERRIDE="${EXTRA[i]#outer.steps=}" ;;
    validation.every=*) VALIDATION_GIVEN=1 ;;
  esac
done
TRAIN_EXTRA=()  # settings of meta-training only
if [ "$SELECT" = best ] && [ "$VALIDATION_GIVEN" -eq 0 ]; then TRAIN_EXTRA=(--set validation.every=100); fi

# --- The cells of the table (cells.tsv columns: table benchmark model method config train model_folder data prepare
# outer_steps shots), and the config of each (benchmark, model, method) for looking up training runs.
declare -A CONFIG_OF
SELECTED=()
while IFS=$'\t' read -r table bench model method config train folder data prepare steps shots; do
  [[ -z "$table" || "$table" == \#* || "$table" == table ]] && continue
  CONFIG_OF["$bench/$model/$method"]="$config"
  [[ "$TABLE" == all || "$TABLE" == "$table" ]] || continue
  [[ -z "$ONLY" ]] || grep -Eq -- "$ONLY" <<<"$bench/$model/$method" || continue
  SELECTED+=("$bench"$'\t'"$model"$'\t'"$method"$'\t'"$config"$'\t'"$train"$'\t'"$folder"$'\t'"$data"$'\t'"$prepare"$'\t'"$steps"$'\t'"$shots")
done <"$CELLS"
[ ${#SELECTED[@]} -gt 0 ] || die "no cell of table '$TABLE' matches --only '$ONLY'"

# --- Inputs: every model and data folder the selected cells need, checked before anything runs.
declare -A NEED_DIR PREPARE_CMD DATA_PATH
BENCHES=()
for row in "${SELECTED[@]}"; do
  IFS=$'\t' read -r bench model method config train folder data prepare steps shots <<<"$row"
  NEED_DIR["$MODELS/$folder"]="the model folder $folder under --models"
  NEED_DIR["$DATA/$data"]="the data folder $data under --data"
  if [ -z "${DATA_PATH[$bench]:-}" ]; then
    BENCHES+=("$bench")
    DATA_PATH["$bench"]="$DATA/$data"
    if [ "$prepare" = split ]; then  # LegalBench, ChemBench: a split view of the tasks under the output folder
      DATA_PATH["$bench"]="$OUT/data/$bench"
      PREPARE_CMD["$bench"]="$(quote python3 scripts/paper/prepare_split.py --data "$DATA/$data" \
        --out "$OUT/data/$bench" --shots "$shots")"
    fi
  fi
done
missing=0
for dir in "${!NEED_DIR[@]}"; do
  [ -d "$dir" ] || { echo "reproduce.sh: error: $dir does not exist (${NEED_DIR[$dir]})" >&2; missing=1; }
done
[ $missing -eq 0 ] || exit 2

# --- Jobs: one per (training run or untrained cell, seed), each a bash command line.
declare -A JOB_INDEX
JOBS=()
JOB_NAMES=()
for seed in $SEEDS; do
  for row in "${SELECTED[@]}"; do
    IFS=$'\t' read -r bench model method config train folder data prepare steps shots <<<"$row"
    base="$OUT/$bench/$model/seed-$seed"
    common=(--set "model.path=$MODELS/$folder" --set "data.path=${DATA_PATH[$bench]}" --set "run.seed=$seed" \
            "${EXTRA[@]}")
    report="$base/$method/report.json"
    if [ "$train" = "-" ]; then
      JOB_NAMES+=("$bench/$model/$method/seed-$seed")
      JOBS+=("test -f $(quote "$report") || $(quote "$ABMLL" evaluate --config "$config" "${common[@]}" \
        --out "$report" --resume)")
      continue
    fi
    run="$base/$train-train"
    ckpt="$run/checkpoints/step-${STEPS_OVERRIDE:-$steps}.safetensors"
    evaluated="$ckpt"
    [ "$SELECT" = best ] && evaluated="$run/checkpoints/best.safetensors"
    evaluate="{ test -f $(quote "$report") || $(quote "$ABMLL" evaluate --config "$config" "${common[@]}" \
      --checkpoint "$evaluated" --out "$report" --resume); }"
    key="$bench/$model/$train/seed-$seed"
    if [ -n "${JOB_INDEX[$key]:-}" ]; then  # a second method on the same training run (abmll_icl on abmll's)
      JOBS[${JOB_INDEX[$key]}]+=" && $evaluate"
      continue
    fi
    train_config="${CONFIG_OF[$bench/$model/$train]:-}"
    [ -n "$train_config" ] || die "cells.tsv: no $train cell for $bench/$model, which $method trains with"
    JOB_INDEX["$key"]=${#JOBS[@]}
    JOB_NAMES+=("$key")
    JOBS+=("{ test -f $(quote "$ckpt") || $(quote "$ABMLL" meta-train --config "$train_config" "${common[@]}" \
      "${TRAIN_EXTRA[@]}" --out "$run" --resume); } && $evaluate")
  done
done

# `abmll report` over the benchmarks of the selected cells (earlier runs of other cells there are included).
REPORT_ARGS=()
for bench in "${BENCHES[@]}"; do REPORT_ARGS+=("$OUT/$bench"); done
# Paired differences from regular LoRA (the icl table, which has none, from in-context learning), when the selected
# cells run it; groups without the baseline's runs are left out of that section.
BASELINE=lora
[ "$TABLE" == icl ] && BASELINE=icl
PAIRED=()
for row in "${SELECTED[@]}"; do
  IFS=$'\t' read -r bench model method _ <<<"$row"
  [ "$method" = "$BASELINE" ] && PAIRED=(--baseline "$BASELINE")
done
report_cmd() {
  quote "$ABMLL" report "$@" --out "$OUT/$TABLE.md" --csv "$OUT/$TABLE.csv" --plots "$OUT/$TABLE-plots" \
    "${PAIRED[@]}"
}

# --- Dry run: what would run, in order.
if [ $DRY_RUN -eq 1 ]; then
  for bench in "${BENCHES[@]}"; do [ -n "${PREPARE_CMD[$bench]:-}" ] && echo "${PREPARE_CMD[$bench]}"; done
  if [ $SLURM -eq 1 ]; then
    echo "# job list $OUT/slurm/$TABLE-jobs.txt (${#JOBS[@]} jobs):"
    printf '%s\n' "${JOBS[@]}"
    quote sbatch --parsable --chdir="$ROOT" --job-name="abmll-$TABLE" --array="1-${#JOBS[@]}" \
      --output="$OUT/slurm/%x-%A_%a.log" scripts/slurm/array.sbatch "$OUT/slurm/$TABLE-jobs.txt"
    quote sbatch --parsable --chdir="$ROOT" --job-name="abmll-$TABLE-report" --dependency=afterany:JOBID \
      --output="$OUT/slurm/%x-%j.log" --wrap="$(report_cmd "${REPORT_ARGS[@]}")"
  else
    printf '%s\n' "${JOBS[@]}"
    report_cmd "${REPORT_ARGS[@]}"
  fi
  exit 0
fi

mkdir -p "$OUT"
for bench in "${BENCHES[@]}"; do
  if [ -n "${PREPARE_CMD[$bench]:-}" ]; then
    echo "reproduce.sh: preparing the task split of $bench" >&2
    bash -c "${PREPARE_CMD[$bench]}" || die "preparing $bench's data failed"
  fi
done

# --- Slurm: the job list and two submissions.
if [ $SLURM -eq 1 ]; then
  command -v sbatch >/dev/null || die "--slurm: sbatch is not on PATH"
  [ -f scripts/slurm/array.sbatch ] || die "--slurm: scripts/slurm/array.sbatch is missing"
  mkdir -p "$OUT/slurm"
  list="$OUT/slurm/$TABLE-jobs.txt"
  printf '%s\n' "${JOBS[@]}" >"$list"
  array_id="$(sbatch --parsable --chdir="$ROOT" --job-name="abmll-$TABLE" --array="1-${#JOBS[@]}" \
    --output="$OUT/slurm/%x-%A_%a.log" scripts/slurm/array.sbatch "$list")"
  array_id="${array_id%%;*}"  # --parsable prints "jobid[;cluster]"
  report_id="$(sbatch --parsable --chdir="$ROOT" --job-name="abmll-$TABLE-report" \
    --dependency="afterany:$array_id" --output="$OUT/slurm/%x-%j.log" --wrap="$(report_cmd "${REPORT_ARGS[@]}")")"
  echo "reproduce.sh: submitted ${#JOBS[@]} jobs as array $array_id (list $list, logs $OUT/slurm/);" \
    "the table job ${report_id%%;*} writes $OUT/$TABLE.md when they end" >&2
  exit 0
fi

# --- One machine: every job in turn, each with its log.
[ -x "$ABMLL" ] || command -v "$ABMLL" >/dev/null || die "$ABMLL is not an executable (build first, or --abmll BIN)"
mkdir -p "$OUT/logs"
failed=()
for i in "${!JOBS[@]}"; do
  log="$OUT/logs/${JOB_NAMES[i]//\//_}.log"
  echo "reproduce.sh: [$((i + 1))/${#JOBS[@]}] ${JOB_NAMES[i]} (log $log)" >&2
  if ! bash -o pipefail -c "${JOBS[i]}" 2>&1 | tee "$log" >&2; then
    echo "reproduce.sh: ${JOB_NAMES[i]} failed; see $log" >&2
    failed+=("${JOB_NAMES[i]}")
  fi
done
existing=()
for dir in "${REPORT_ARGS[@]}"; do [ -d "$dir" ] && existing+=("$dir"); done
if [ ${#existing[@]} -gt 0 ]; then
  bash -c "$(report_cmd "${existing[@]}")" || failed+=("abmll report")
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "reproduce.sh: ${#failed[@]} failed: ${failed[*]}" >&2
  exit 1
fi
echo "reproduce.sh: table written to $OUT/$TABLE.md and $OUT/$TABLE.csv" >&2
