#!/usr/bin/env bash
# The device check, run on a machine with a GPU: builds, runs every test (GPU tests included: they run instead of
# being skipped), checks that abmll selects and describes the GPU, and writes what it measured under $OUT
# (default: build/gpu_check). Prepared to run unattended in one go within a few minutes.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${OUT:-$root/build/gpu_check}
mkdir -p "$out"
export ABMLL_JOBS=${ABMLL_JOBS:-$(nproc)}

{ nvidia-smi || true; } > "$out/nvidia-smi.txt" 2>&1
./scripts/setup.sh > "$out/setup.log" 2>&1 || { echo "setup failed; see setup.log"; tail -30 "$out/setup.log"; exit 1; }

status=0
"$(cat build/.abmll-venv)/bin/ctest" --test-dir build --output-on-failure -j 4 > "$out/ctest.log" 2>&1 || status=1
tail -5 "$out/ctest.log"

# The GPU kernels' tests (tag [cuda]) against their ATen references must have run here, not been skipped.
./build/tests/abmll_tests "[cuda]" --success > "$out/cuda-tests.log" 2>&1 || status=1
if grep -q "skipped:" "$out/cuda-tests.log"; then echo "GPU tests were skipped on the GPU machine"; status=1; fi
tail -3 "$out/cuda-tests.log"

# The GPU is selected and described; the report records it.
./build/abmll meta-train --config configs/demo.yaml --set run.device=cuda --out "$out/meta-train" \
  > "$out/meta-train.log" 2>&1 || status=1
grep -h '"description"' "$out/meta-train/report.json" 2>/dev/null | head -1

# The 8B-shape meta-step (bf16, random weights): seconds per step, tokens/s, MFU, peak memory; one more step under
# the profiler (time per GPU kernel and operator: shape-step-profile/*.ops.tsv).
timeout 900 "$(cat build/.abmll-venv)/bin/python" scripts/bench/shape_step.py --abmll build/abmll --device cuda --reference \
  --json "$out/shape-step.json" --profile "$out/shape-step-profile" > "$out/shape-step.log" 2>&1 || status=1
tail -12 "$out/shape-step.log"

# The memory plan's trade: the last 8 of 32 layers keep their activations (about 2 GB each at this batch, measured
# on the CPU at the 8B width), so less is recomputed; peak memory should stay under 40 GB.
timeout 600 "$(cat build/.abmll-venv)/bin/python" scripts/bench/shape_step.py --abmll build/abmll --device cuda \
  --steps 2 --warmup 1 --set model.checkpointed_layers=24 --json "$out/shape-step-partial.json" \
  > "$out/shape-step-partial.log" 2>&1 || status=1
tail -12 "$out/shape-step-partial.log"
exit $status
