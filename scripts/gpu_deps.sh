#!/usr/bin/env bash
# Downloads the Debian packages of abmll's C++ build dependencies (and pkg-config) into .gpu-deps/ (git-ignored),
# for a machine that cannot fetch them (a GPU node without network access that has PyTorch, CMake, ninja and nvcc
# but not these). Run it where apt works, bring .gpu-deps along with the source tree, and scripts/gpu_check.sh
# unpacks them there (into /tmp, never into /) and builds against them (setup.sh's ABMLL_DEPS_PREFIX).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/.gpu-deps"
packages=(libcli11-dev libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev catch2 libpcre2-dev libpcre2-8-0
          libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2 libgloo-dev pkgconf pkgconf-bin
          libpkgconf3)
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
apt-get download "${packages[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true
count=$(ls "$dir"/*.deb 2>/dev/null | wc -l)
[ "$count" -eq "${#packages[@]}" ] || { echo "gpu_deps: got $count of ${#packages[@]} packages" >&2; exit 1; }
echo "gpu_deps: ${count} packages, $(du -sh "$dir" | cut -f1), in $dir: carry .gpu-deps"
