#!/usr/bin/env bash
# Builds abmll and its C++ tests here, against the GPU machine's PyTorch (by default torch 2.11.0, the PyPI wheel,
# CUDA 13.0, which that machine's image holds), into .gpu-prebuilt/ (git-ignored), so that scripts/gpu_check.sh
# spends the device's minutes measuring rather than compiling (about 160 translation units against LibTorch). The
# check uses the binaries only if they were built from the very sources it runs with, against the same torch version,
# and start there; otherwise it builds as before. Run scripts/gpu_deps.sh too, and carry both folders:
#   ./scripts/gpu_deps.sh && ./scripts/gpu_prebuild.sh
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu-deps", ".gpu-prebuilt"], timeout_s=590)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
version=${ABMLL_GPU_TORCH:-2.11.0}
cache=${ABMLL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/abmll}/gpu-torch-$version
build=${ABMLL_GPU_BUILD_DIR:-build-gpu}
out="$root/.gpu-prebuilt"

# The pinned environment: its pip fetches the wheel, and its CUDA 13 libraries (the same major version) stand in for
# the wheel's at link time (libtorch_cuda.so names them; they come as separate packages).
[ -f build/.abmll-venv ] || ./scripts/setup.sh
venv=$(cat build/.abmll-venv)
if [ ! -f "$cache/.complete" ]; then
  echo "gpu_prebuild: fetching torch $version into $cache" >&2
  rm -rf "$cache"
  mkdir -p "$cache"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$cache/site" "torch==$version"
  pinned_site=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
  ln -s "$pinned_site/nvidia" "$cache/site/nvidia"
  touch "$cache/.complete"
fi
torch_version=$("$venv/bin/python" -c \
  "import runpy; print(runpy.run_path('$cache/site/torch/version.py')['__version__'])")

sources=$(./scripts/source_hash.sh)  # before building: binaries are labelled with what they were built from
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$cache/site/torch/share/cmake" \
  -DABMLL_PYTHON="$venv/bin/python" > "$cache/configure.log" 2>&1 || { cat "$cache/configure.log" >&2; exit 1; }
cmake --build "$build" -j "${ABMLL_JOBS:-$(nproc)}" --target abmll abmll_tests abmll_kernel_bench >&2
if [ "$(./scripts/source_hash.sh)" != "$sources" ]; then
  echo "gpu_prebuild: the sources changed during the build; run it again" >&2
  exit 1
fi

rm -rf "$out"
mkdir -p "$out"
cp "$build/abmll" "$build/tests/abmll_tests" "$build/abmll_kernel_bench" "$out/"
printf '%s\n' "$torch_version" > "$out/torch-version"
printf '%s\n' "$sources" > "$out/source-hash"
echo "gpu_prebuild: $out ($(du -sh "$out" | cut -f1)) for torch $torch_version, sources $(cat "$out/source-hash")" >&2
