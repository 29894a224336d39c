#!/usr/bin/env bash
# A short hash of everything the C++ build reads from the source tree (sources, kernels, tests, benchmarks, CMake
# files), computed from the files themselves so that it needs no git: gpu_prebuild.sh records it beside the binaries
# it builds, and gpu_check.sh uses them only where the sources it runs with hash the same. Hidden files and Python
# caches are left out (they are not carried, and the build does not read them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
find src cuda tests bench cmake CMakeLists.txt -type f ! -path '*/.*' ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
