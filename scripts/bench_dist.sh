#!/usr/bin/env bash
# Data-parallel scaling on CPU: ABMLL meta-training of the embedded demo model with the same total tasks per
# meta-batch (8) in three ways, each on the same 2 cores:
#   A  1 process, 1 thread            (the unit of work)
#   B  1 process, 2 threads           (intra-op parallelism, the alternative to ranks)
#   C  2 Gloo ranks over loopback, 1 thread each, 4 tasks per rank
# and prints the median seconds per outer step (step 1, the warm-up, excluded), the speed-ups and the data-parallel
# efficiency t_A / (2 t_C). Then `abmll evaluate` of A's last checkpoint (the demo's 4 held-out tasks x 64 queries)
# in the same three ways, timed by the reports' evaluate_seconds (model loading excluded).
# Not a test; numbers depend on what else runs on the machine.
#   ./scripts/bench_dist.sh [STEPS] (default 8)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${ABMLL_BUILD_DIR:-$root/build}
abmll=$build_dir/abmll
[ -x "$abmll" ] || { echo "no $abmll: run scripts/setup.sh" >&2; exit 2; }
steps=${1:-8}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$abmll" make-demo --out "$work/demo" 2>/dev/null
common=(meta-train --config "$root/configs/demo.yaml" --set "model.path=$work/demo/model"
        --set "data.path=$work/demo/data" --set "data.partition=$work/demo/data/partitions/demo.json"
        --set outer.tasks_per_batch=8 --set "outer.steps=$steps" --set run.checkpoint_every=0)
unset RANK WORLD_SIZE LOCAL_RANK MASTER_ADDR MASTER_PORT SLURM_PROCID SLURM_NTASKS

# Median seconds per step from metrics.jsonl's elapsed_s, skipping the first step (or of another field).
step_seconds() {
  python3 - "$1/metrics.jsonl" "${2:-}" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
if sys.argv[2]:
    print(f"{statistics.median(m[sys.argv[2]] for m in lines[1:]):.4f}")
else:
    t = [m["elapsed_s"] for m in lines]
    print(f"{statistics.median(b - a for a, b in zip(t[1:], t[2:])):.4f}")
PY
}

# `abmll ARGS... --out $work/NAME{a,b,c}/FILE` in the three ways A, B, C (C's ranks log to $work/NAMEc-RANK.log).
#   three_ways NAME FILE ARGS...
three_ways() {
  local name=$1 file=$2; shift 2
  OMP_NUM_THREADS=1 "$abmll" "$@" --out "$work/${name}a/$file" 2>/dev/null
  OMP_NUM_THREADS=2 "$abmll" "$@" --out "$work/${name}b/$file" 2>/dev/null
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  for rank in 0 1; do
    OMP_NUM_THREADS=1 RANK=$rank WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$abmll" "$@" --out "$work/${name}c/$file" --dist-backend gloo 2>"$work/${name}c-$rank.log" &
  done
  wait
}
three_ways "" "" "${common[@]}"
three_ways e report.json evaluate "${common[@]:1}" --checkpoint "$work/a/checkpoints/step-$steps.safetensors"
evaluate_seconds() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["timings"]["evaluate_seconds"])' "$1/report.json"
}

a=$(step_seconds "$work/a"); b=$(step_seconds "$work/b"); c=$(step_seconds "$work/c")
ea=$(evaluate_seconds "$work/ea"); eb=$(evaluate_seconds "$work/eb"); ec=$(evaluate_seconds "$work/ec")
sync=$(step_seconds "$work/c" sync_s)
python3 - "$a" "$b" "$c" "$sync" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)" "$ea" "$eb" "$ec" <<'PY'
import sys
a, b, c, sync = map(float, sys.argv[1:5])
ea, eb, ec = map(float, sys.argv[7:10])
print("seconds per outer step (8 tasks, median):")
print(f"  A 1 process x 1 thread    {a:.3f}")
print(f"  B 1 process x 2 threads   {b:.3f}   speed-up {a / b:.2f}")
print(f"  C 2 Gloo ranks x 1 thread {c:.3f}   speed-up {a / c:.2f}, data-parallel efficiency {a / (2 * c):.0%}")
print(f"    of which in collectives (all-reduce + waiting for the other rank): {sync:.4f} s ({sync / c:.1%})")
print("seconds per evaluation (4 held-out tasks x 64 queries):")
print(f"  A 1 process x 1 thread    {ea:.3f}")
print(f"  B 1 process x 2 threads   {eb:.3f}   speed-up {ea / eb:.2f}")
print(f"  C 2 Gloo ranks x 1 thread {ec:.3f}   speed-up {ea / ec:.2f}, data-parallel efficiency {ea / (2 * ec):.0%}")
print(f"machine: {sys.argv[6]} cores, load average {sys.argv[5]} (other jobs share the cores)")
PY
