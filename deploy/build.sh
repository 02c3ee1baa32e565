#!/usr/bin/env bash
# Configures and builds hier-serve (Release, Ninja, ccache when installed) into build/, or into
# $HIER_BUILD_DIR. Extra arguments go to CMake (e.g. -DHIER_CORE_ONLY=ON).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HIER_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" --parallel "$(nproc)"
