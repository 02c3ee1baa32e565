#!/usr/bin/env bash
# Fails when a folder includes headers of a library it must not depend on (architecture.md):
# trainer/ never sees gRPC, FAISS or Prometheus; index/ and client/ never see LibTorch; index/
# never sees gRPC.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
status=0

forbid() {  # forbid FOLDER REGEX WHAT
  local folder="$root/$1"
  [ -d "$folder" ] || return 0
  local hits
  hits=$(grep -rnE "^\s*#\s*include\s*[<\"]($2)" "$folder" --include='*.h' --include='*.cc' || true)
  if [ -n "$hits" ]; then
    echo "check-layering: $1 must not depend on $3:"
    echo "$hits"
    status=1
  fi
}

forbid trainer 'grpcpp/|grpc/|faiss/|prometheus/' "gRPC, FAISS or Prometheus"
forbid index 'torch/|ATen/|c10/|grpcpp/|grpc/' "LibTorch or gRPC"
forbid client 'torch/|ATen/|c10/|faiss/' "LibTorch or FAISS"
[ $status -eq 0 ] && echo "check-layering: dependency arrows hold"
exit $status
