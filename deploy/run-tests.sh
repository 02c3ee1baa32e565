#!/usr/bin/env bash
# Installs what the project needs, builds it and runs every test suite (CTest), then runs them all
# again built with AddressSanitizer + UndefinedBehaviorSanitizer (deploy/run-sanitizers.sh asan,
# into build-asan/). The reference parity suite reads $HIER_REFERENCE_DIR (default:
# ../shared/reference/hier beside the checkout).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/deploy/check-layering.sh"
bash "$root/deploy/install-deps.sh"
bash "$root/deploy/build.sh"
ctest --test-dir "${HIER_BUILD_DIR:-$root/build}" --output-on-failure --timeout 900 -j "$(nproc)"
bash "$root/deploy/run-sanitizers.sh" asan
