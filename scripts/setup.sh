#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks and builds abmll into build/ (binary: build/abmll).
# Idempotent: packages already present, a venv whose requirements did not change and an up-to-date build are reused,
# so a re-run with nothing changed takes seconds.
#
# Environment:
#   ABMLL_CACHE_DIR   where the Python virtual environment lives (default: ~/.cache/abmll); shared by re-runs and CI
#   ABMLL_BUILD_DIR   build folder (default: build)
#   ABMLL_BUILD_TYPE  CMake build type (default: Release)
#   ABMLL_TORCH_DIR   use this LibTorch (an unpacked official zip) instead of the torch wheel's
# On a machine without network access (a GPU machine with its own PyTorch, say):
#   ABMLL_PYTHON      a Python that already has torch and the test packages: used as is, no environment is created
#   ABMLL_DEPS_PREFIX a folder holding the unpacked Debian packages of the C++ dependencies (scripts/gpu_deps.sh
#                     downloads them, scripts/gpu_check.sh unpacks them): nothing is installed with apt, and CMake,
#                     pkg-config and the loader look there
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------------------------------
# libgloo-dev: gloo's headers, needed only to compile against LibTorch's ProcessGroupGloo header (see CMakeLists.txt).
apt_packages=(build-essential git pkg-config ccache python3 python3-venv libcli11-dev libyaml-cpp-dev
              nlohmann-json3-dev libfmt-dev catch2 libpcre2-dev libutf8proc-dev libopenblas0-pthread clang
              libclang-rt-dev libgloo-dev)
missing=()
if [ -n "${ABMLL_DEPS_PREFIX:-}" ]; then apt_packages=(); fi  # they were unpacked there
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- Python virtual environment (LibTorch + build tools + reference implementations) ---------------------------------
# Its folder name is a hash of the pinned requirements, so changing them makes a fresh environment.
cache_dir=${ABMLL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/abmll}
req="$root/scripts/requirements.txt"
req_nodeps="$root/scripts/requirements-nodeps.txt"
req_hash=$(cat "$req" "$req_nodeps" | sha256sum | cut -c1-12)
venv="$cache_dir/venv-$req_hash"
if [ -n "${ABMLL_PYTHON:-}" ]; then
  # A stand-in environment inside the build folder: bin/python runs that Python, bin/ctest the ctest beside it or
  # on PATH (what the scripts take from an environment); nothing is written outside the checkout.
  python_path=$(command -v "$ABMLL_PYTHON")
  venv=${ABMLL_BUILD_DIR:-build}/python-env
  [ "${venv#/}" != "$venv" ] || venv="$root/$venv"
  mkdir -p "$venv/bin"
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$python_path" > "$venv/bin/python"
  ctest_path=$(PATH="$(dirname "$python_path"):$PATH" command -v ctest || true)
  if [ -n "$ctest_path" ]; then printf '#!/bin/sh\nexec "%s" "$@"\n' "$ctest_path" > "$venv/bin/ctest"; fi
  chmod +x "$venv"/bin/*
  export PATH="$(dirname "$python_path"):$PATH"  # its cmake and ninja, when it has them
  say "using $python_path and its packages as they are (ABMLL_PYTHON)"
elif [ ! -f "$venv/.complete" ]; then
  say "creating Python environment $venv (pinned in scripts/requirements.txt)"
  mkdir -p "$cache_dir"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$req_nodeps" >&2
  touch "$venv/.complete"
fi
export PATH="$venv/bin:$PATH"

# --- Configure and build ---------------------------------------------------------------------------------------------
build_dir=${ABMLL_BUILD_DIR:-build}
build_type=${ABMLL_BUILD_TYPE:-Release}
if [ -n "${ABMLL_TORCH_DIR:-}" ]; then
  torch_prefix="$ABMLL_TORCH_DIR"
else
  torch_prefix=$("$venv/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
fi
prefix_path="$torch_prefix"
if [ -n "${ABMLL_DEPS_PREFIX:-}" ]; then
  deps=$(cd "$ABMLL_DEPS_PREFIX" && pwd)/usr
  prefix_path="$torch_prefix;$deps"
  multiarch=$deps/lib/x86_64-linux-gnu
  # The packages' pkg-config files name /usr: point them at where they were unpacked.
  sed -i "s#^prefix=/usr\$#prefix=$deps#" "$multiarch"/pkgconfig/*.pc
  export PKG_CONFIG_PATH="$multiarch/pkgconfig:$deps/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  command -v pkg-config >/dev/null || export PKG_CONFIG="$deps/bin/pkgconf"
fi
configure_args=(-S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type"
                -DCMAKE_PREFIX_PATH="$prefix_path" -DABMLL_PYTHON="$venv/bin/python")
if [ ! -f "$build_dir/build.ninja" ] || [ "$(cat "$build_dir/.abmll-configure" 2>/dev/null)" != "${configure_args[*]}" ]; then
  say "configuring $build_dir ($build_type)"
  cmake "${configure_args[@]}" >&2
  printf '%s' "${configure_args[*]}" > "$build_dir/.abmll-configure"
fi
jobs=${ABMLL_JOBS:-$(nproc)}
cmake --build "$build_dir" -j "$jobs" >&2
# Where the environment is, for scripts that run its tools (ctest, Python) on this build.
printf '%s\n' "$venv" > "$build_dir/.abmll-venv"
say "built $build_dir/abmll"
