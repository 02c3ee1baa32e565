#!/usr/bin/env bash
# Installs what the project needs, builds it and runs the main job: hier-train learns HIER
# embeddings of Fashion-MNIST (the embedded default data set) on the CPU, then prints where the
# run directory, the learned hierarchy and the plots are. HIER_EPOCHS sets the length (default 3,
# a few minutes on two cores); extra arguments go to hier-train (see `hier-train --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/deploy/install-deps.sh"
bash "$root/deploy/build.sh"
cd "$root"
"${HIER_BUILD_DIR:-$root/build}/trainer/hier-train" \
  --epochs "${HIER_EPOCHS:-3}" \
  --groups "$root/trainer/data/fashion_mnist_groups.json" \
  "$@"
