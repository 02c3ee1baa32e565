#!/usr/bin/env bash
# Configures and builds hier-serve (Release, Ninja, ccache when installed) into build/, or into
# $HIER_BUILD_DIR. Extra arguments go to CMake (e.g. -DHIER_CORE_ONLY=ON).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HIER_BUILD_DIR:-$root/build}"
# ccache keys on paths relative to the checkout, so clones in other folders share its entries.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" --parallel "$(nproc)"
