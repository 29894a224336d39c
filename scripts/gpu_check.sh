#!/usr/bin/env bash
# The device check, run on a machine with a GPU: builds, runs the GPU tests (they run instead of being skipped; the
# whole suite too with --with-cpu-tests), checks that abmll selects and describes the GPU, and writes what it
# measured under $OUT (default: build/gpu_check). Prepared to run unattended in one go within a few minutes. For a
# GPU machine without network access, run scripts/gpu_deps.sh where apt works and bring .gpu-deps along; with
# scripts/gpu_prebuild.sh's .gpu-prebuilt too, the build is skipped (the whole CPU suite, --with-cpu-tests, builds).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${OUT:-$root/build/gpu_check}
mkdir -p "$out"
# At most 8 files under $OUT (few and small enough to copy back whole): summary.txt, setup.log, cuda-tests.log,
# the two benchmark runs' .json, their .log (one file), and the profile's operator and memory tables. Everything else
# stays in $work.
work=/tmp/abmll-gpu-check
rm -rf "$work" && mkdir -p "$work"
summary="$out/summary.txt"
note() { printf '%s\n' "$*" | tee -a "$summary"; }
export ABMLL_JOBS=${ABMLL_JOBS:-$(nproc)}

{ nvidia-smi || true; } > "$summary" 2>&1

# The GPU machine reaches no network: it has PyTorch (python3), CMake, ninja and nvcc, and the C++ dependencies come
# as Debian packages brought along in .gpu-deps (scripts/gpu_deps.sh, run beforehand where apt works). They are
# unpacked under /tmp, and the build uses the machine's own torch instead of creating an environment.
if [ -d .gpu-deps ]; then
  deps=/tmp/abmll-deps
  mkdir -p "$deps"
  for f in .gpu-deps/*.deb; do
    dpkg -x "$f" "$deps" 2>/dev/null ||
      (tmp=$(mktemp -d) && cd "$tmp" && ar x "$root/$f" && tar -xf data.tar.* -C "$deps" && rm -rf "$tmp")
  done
  export ABMLL_DEPS_PREFIX=$deps
  export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ -z "${ABMLL_PYTHON:-}" ] && python3 -c 'import torch' 2>/dev/null; then
  export ABMLL_PYTHON=$(command -v python3)
fi
{ echo "python: ${ABMLL_PYTHON:-(a fresh environment)}"
  "${ABMLL_PYTHON:-python3}" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' 2>&1
  command -v g++ nvcc cmake ninja; g++ --version | head -1; nvcc --version | tail -2; } >> "$summary" 2>&1
start=$(date +%s)
# Binaries built beforehand against this machine's torch (scripts/gpu_prebuild.sh, carried as .gpu-prebuilt) save the
# build's minutes: used if they come from these very sources and this torch version and start here; else the build.
prebuilt=""
if [ "${1:-}" != "--with-cpu-tests" ] && [ -x .gpu-prebuilt/abmll ] && [ -x .gpu-prebuilt/abmll_tests ] &&
  [ -x .gpu-prebuilt/abmll_kernel_bench ]; then
  here_torch=$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
  if [ "$(cat .gpu-prebuilt/source-hash)" != "$(./scripts/source_hash.sh)" ]; then
    prebuilt="not used: built from other sources"
  elif [ "$(cat .gpu-prebuilt/torch-version)" != "$here_torch" ]; then
    prebuilt="not used: built for torch $(cat .gpu-prebuilt/torch-version), here $here_torch"
  else
    # The wheel's libraries where this machine's torch has them (the binaries' run path names the build machine's).
    libs=$(python3 -c 'import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
nvidia = glob.glob(os.path.join(site, "nvidia", "**", "lib*.so*"), recursive=True)
print(":".join([os.path.join(site, "torch", "lib")] + sorted({os.path.dirname(f) for f in nvidia})))')
    loader_path="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if LD_LIBRARY_PATH="$loader_path" .gpu-prebuilt/abmll --version > "$work/prebuilt.log" 2>&1; then
      export LD_LIBRARY_PATH="$loader_path"
      mkdir -p build/tests
      cp .gpu-prebuilt/abmll build/abmll
      cp .gpu-prebuilt/abmll_tests build/tests/abmll_tests
      cp .gpu-prebuilt/abmll_kernel_bench build/abmll_kernel_bench
      prebuilt=used
    else
      prebuilt="not used: $(tail -1 "$work/prebuilt.log")"
    fi
  fi
  note "prebuilt binaries: $prebuilt"
fi
if [ "$prebuilt" = used ]; then
  python=python3
else
  if ! ./scripts/setup.sh > "$out/setup.log" 2>&1; then
    note "setup failed; see setup.log"
    tail -40 "$out/setup.log"
    exit 1
  fi
  note "built in $(( $(date +%s) - start )) s"
  python=$(cat build/.abmll-venv)/bin/python
fi

status=0
# The whole CPU suite only when asked (--with-cpu-tests): CI runs it on every change, and here it would take device
# time (and a command's 10 minutes) from the GPU measurements. Bounded even then.
if [ "${1:-}" = "--with-cpu-tests" ]; then
  ctest=$(cat build/.abmll-venv 2>/dev/null)/bin/ctest
  [ -x "$ctest" ] || ctest=ctest
  timeout 300 "$ctest" --test-dir build --output-on-failure -j 8 > "$work/ctest.log" 2>&1 || status=1
  tail -25 "$work/ctest.log" >> "$summary"
fi

# The GPU kernels' tests (tag [cuda]) against their ATen references must have run here, not been skipped.
./build/tests/abmll_tests "[cuda]" --success > "$out/cuda-tests.log" 2>&1 || status=1
if grep -q "skipped:" "$out/cuda-tests.log"; then note "GPU tests were skipped on the GPU machine"; status=1; fi
tail -3 "$out/cuda-tests.log" | tee -a "$summary"
# abmll's kernels against ATen's chains, piece by piece, at the 8B shape (bench/kernel_bench.cpp): each kernel's worth.
timeout 90 ./build/abmll_kernel_bench --device cuda --json "$out/kernels.json" 2>&1 | tee -a "$summary" || status=1

# The GPU is selected and described; the report records it. (runs/ is not carried: the demo's model and tasks are
# made here.)
[ -d runs/demo/model ] || ./build/abmll make-demo --out runs/demo > "$work/make-demo.log" 2>&1 || status=1
./build/abmll meta-train --config configs/demo.yaml --set run.device=cuda --out "$work/meta-train" \
  > "$work/meta-train.log" 2>&1 || { status=1; tail -20 "$work/meta-train.log" >> "$summary"; }
note "demo on cuda: $(grep -h '"description"' "$work/meta-train/report.json" 2>/dev/null | head -1)"
note "demo metrics: $(tail -1 "$work/meta-train/metrics.jsonl" 2>/dev/null)"
# ICL scoring on the GPU with the demonstrations shared by rows of queries (masked attention over packed rows) and
# without: the same option scores.
for share in true false; do
  timeout 60 ./build/abmll evaluate --config configs/demo.yaml --set run.device=cuda --set method=icl \
    --set eval.share_prefix=$share --out "$work/icl-$share/report.json" > "$work/icl-$share.log" 2>&1 || status=1
done
note "demo icl on cuda, shared demonstrations vs not: $("$python" - "$work" <<'PY' 2>&1
import json, pathlib, sys
read = lambda s: [json.loads(l) for l in (pathlib.Path(sys.argv[1]) / f"icl-{s}/predictions.jsonl").open()]
a, b = read("true"), read("false")
worst = max(abs(x - y) for p, q in zip(a, b) for x, y in zip(p["option_loglik"], q["option_loglik"]))
report = lambda s: json.loads((pathlib.Path(sys.argv[1]) / f"icl-{s}/report.json").read_text())["results"]
speed = [report(s)["scoring_queries_per_s"] for s in ("true", "false")]
print(f"max abs option log-likelihood difference {worst:.3g} over {len(a)} queries; "
      f"queries/s {speed[0]:.0f} vs {speed[1]:.0f}")
PY
)"

# adapt and predict on the GPU: a held-out task's posterior-mean predictions for every letter, against the CPU's
# from the same adapted file (bf16 against float32).
task=$(awk '/"test"/ { listed = 1; next } listed && /"/ { gsub(/[ ",]/, ""); print; exit }' \
  runs/demo/data/partitions/demo.json)
timeout 60 ./build/abmll adapt --config configs/demo.yaml --set run.device=cuda --task "$task" --out "$work/adapt" \
  --checkpoint "$(ls -v "$work"/meta-train/checkpoints/step-*.safetensors | tail -1)" > "$work/adapt.log" 2>&1 \
  || status=1
for letter in a b c d e f g h i j k l m n o p q r s t u v w x y z; do printf '{"input": "letter: %s"}\n' "$letter"
done > "$work/letters.jsonl"
for device in cuda cpu; do
  timeout 60 ./build/abmll predict --config configs/demo.yaml --set run.device=$device --set eval.samples=0 \
    --adapted "$work/adapt" --input "$work/letters.jsonl" --out "$work/predict-$device" \
    > "$work/predict-$device.log" 2>&1 || status=1
done
note "demo adapt + predict on cuda vs cpu: $("$python" - "$work" <<'PY' 2>&1
import json, pathlib, sys
read = lambda d: [json.loads(l) for l in (pathlib.Path(sys.argv[1]) / f"predict-{d}/predictions.jsonl").open()]
a, b = read("cuda"), read("cpu")
worst = max(abs(x - y) for p, q in zip(a, b) for x, y in zip(p["probs"], q["probs"]))
same = sum(p["prediction"] == q["prediction"] for p, q in zip(a, b))
print(f"max abs probability difference {worst:.3g}; the same answer for {same} of {len(a)} queries")
PY
)"

# The 8B-shape meta-step (bf16, random weights): seconds per step, tokens/s, MFU, peak memory, against the Python
# reference (factor family); one more step under the profiler (time per GPU kernel and operator, and what holds
# memory at the step's peak).
timeout 300 "$python" scripts/bench/shape_step.py --abmll build/abmll --device cuda --reference \
  --json "$out/shape-step.json" --profile "$work/profile" > "$out/shape-step.log" 2>&1 || status=1
cp "$work"/profile/*.ops.tsv "$out/shape-step.ops.tsv" 2>/dev/null
cp "$work"/profile/*.memory.tsv "$out/shape-step.memory.tsv" 2>/dev/null
tail -12 "$out/shape-step.log" | tee -a "$summary"
# The profiled step at a glance: its costliest kernels, and what made the host wait for the device (a meta-step
# should read its figures once, at its end: util/read_scalars.h).
if [ -f "$out/shape-step.ops.tsv" ]; then
  note "profiled step (kind, name, calls, self ms, total ms): top kernels, synchronisations and copies, abmll's kernels"
  { awk -F'\t' '$1 == "device"' "$out/shape-step.ops.tsv" | head -8
    grep -E 'Synchronize|cudaMemcpy|Memcpy' "$out/shape-step.ops.tsv" | head -8
    awk -F'\t' '$1 == "device"' "$out/shape-step.ops.tsv" | grep -E 'noisy_|counter_noise|weight_kl|entry_gradient' |
      head -6; } | cut -c1-160 | tee -a "$summary"
fi

# The memory plan's trade: the last 20 of 32 layers keep their activations (about 0.89 GB each at this batch,
# measured on the CPU at the 8B width), so less is recomputed; peak memory should stay under 40 GB (~36 GB expected).
echo "=== model.checkpointed_layers=12 ===" >> "$out/shape-step.log"
timeout 150 "$python" scripts/bench/shape_step.py --abmll build/abmll --device cuda --steps 2 --warmup 1 \
  --set model.checkpointed_layers=12 --json "$out/shape-step-partial.json" >> "$out/shape-step.log" 2>&1 ||
  status=1
tail -12 "$out/shape-step.log" | tee -a "$summary"

# abmll's own kernels against their references, ATen's ops (model.cuda_kernels=false), on the same step: what the
# kernels are worth; and figures even if a kernel failed above.
echo "=== model.cuda_kernels=false ===" >> "$out/shape-step.log"
timeout 120 "$python" scripts/bench/shape_step.py --abmll build/abmll --device cuda --steps 2 --warmup 1 \
  --set model.cuda_kernels=false --json "$out/shape-step-aten.json" >> "$out/shape-step.log" 2>&1 || status=1
tail -12 "$out/shape-step.log" | tee -a "$summary"

# Last, bounded: abmll's own CUDA kernels (the weight family's KL, noisy output, counter-based noise and squared input;
# SwiGLU, RoPE) under compute-sanitizer's memcheck, which reports out-of-bounds and misaligned accesses that a
# comparison of results can miss.
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ]; then
  kernel_tests="[weight][cuda],[model][cuda]"
  echo "=== compute-sanitizer --tool memcheck, $kernel_tests ===" >> "$out/cuda-tests.log"
  if timeout 60 "$sanitizer" --tool memcheck --error-exitcode 3 ./build/tests/abmll_tests "$kernel_tests" \
      >> "$out/cuda-tests.log" 2>&1; then
    note "compute-sanitizer memcheck of abmll's kernels: clean"
  else
    status=1
    note "compute-sanitizer memcheck of abmll's kernels: errors or timeout (see cuda-tests.log)"
  fi
fi
note "total $(( $(date +%s) - start )) s after the start of the build, status $status"
exit $status
