#!/usr/bin/env bash
# On a machine with a CUDA GPU and PyTorch installed: builds hier_core + hier-train against the
# LibTorch inside that PyTorch (LibTorch, OpenSSL's and libpng's headers; no OpenCV, no tests)
# into build-cuda/, then trains the default model on CUDA for 2 short epochs and prints the run's
# images/s. Usage:
#   cuda-train.sh FASHION_MNIST_DIR [extra hier-train flags]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data="${1:?usage: cuda-train.sh FASHION_MNIST_DIR [hier-train flags]}"
shift
prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "cxx11 abi", torch.compiled_with_cxx11_abi(), "gpu", torch.cuda.get_device_name(0))'
HIER_BUILD_DIR="$root/build-cuda" bash "$root/deploy/build.sh" -DHIER_CORE_ONLY=ON \
  -DHIER_WITH_OPENCV=OFF -DCMAKE_PREFIX_PATH="$prefix"
run="$(mktemp -d)/run"
"$root/build-cuda/trainer/hier-train" --device cuda --data-dir "$data" --run-dir "$run" \
  --epochs 2 "$@"
grep -E '"(state|images_per_second|best_recall)"' "$run/status.json"
