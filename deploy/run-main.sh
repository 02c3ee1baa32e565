#!/usr/bin/env bash
# Installs what the project needs, builds it and runs the main job: the HIER loss (forward and
# backward, mining included, 512 proxies) timed against the whole-tensor formulation of the
# reference implementation in the same process, with peak tensor memory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/deploy/install-deps.sh"
bash "$root/deploy/build.sh"
"${HIER_BUILD_DIR:-$root/build}/tests/hier_core_bench" \
  --benchmark_filter='BM_Hier(Fused|WholeTensor)/batch:(90|180)/dim:128/topk:20/' "$@"
