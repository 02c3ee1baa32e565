#!/usr/bin/env bash
# Installs every Debian 12 package hier-serve needs to build, test and run, then (on AVX2 CPUs)
# builds Debian's FAISS source for AVX2 (build-faiss-avx2.sh), then the web console's browser-test
# driver from npm at the versions its lockfile pins (tests/console; HIER_BROWSER_TESTS=0 skips the
# browser, Node.js and the driver). Idempotent: packages already
# present are skipped, and the package lists are refreshed at most once per call.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config
  # fetching and patching Debian's FAISS source (build-faiss-avx2.sh)
  curl ca-certificates patch xz-utils libblas-dev liblapack-dev
  # trainer: LibTorch (CPU) with an optimised BLAS behind it, Gloo for multi-process training
  libtorch-dev libopenblas0-openmp libgloo-dev zlib1g-dev
  libssl-dev libpng-dev  # SHA-256 (OpenSSL), PNG output (libpng)
  # index and server
  libfaiss-dev libsqlite3-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
  protobuf-compiler libabsl-dev prometheus-cpp-dev nlohmann-json3-dev
  libcpp-httplib-dev  # the HTTP/JSON API (server/http)
  libcli11-dev  # the client tools' command lines
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  # the PostgreSQL store of record (index/postgres_item_store.h: libpqxx 6.4 over libpq), and the
  # server binaries the item store tests and deploy/postgres-scratch.sh start throwaway servers with
  libpqxx-dev libpq-dev postgresql
  # tests and benchmarks; Prometheus and the Python client example are exercised end to end
  libgtest-dev libgmock-dev libbenchmark-dev prometheus python3-grpcio python3-protobuf openssl
  # the embedded default data set
  dataset-fashion-mnist
  yamllint  # deploy/check-deploy.sh (with promtool from prometheus, python3-yaml via yamllint)
  # deploy/fuzz.sh: clang with libFuzzer and the sanitizers, and its OpenMP runtime
  clang-14 libclang-rt-14-dev libomp-14-dev
)
# The web console's browser tests (tests/console): a real browser driven headless from Node.js,
# and npm for the driver. Node.js and npm come from Debian unless a Node.js with npm is installed
# already (from elsewhere, whose package would conflict with Debian's npm). HIER_BROWSER_TESTS=0
# leaves them out (the container image's build stage, which runs no tests).
browser_tests="${HIER_BROWSER_TESTS:-1}"
if [ "$browser_tests" = 1 ]; then
  PACKAGES+=(chromium)
  if ! command -v npm > /dev/null; then PACKAGES+=(nodejs npm); fi
fi

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
  echo "install-deps: installing ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi
bash "$(dirname "${BASH_SOURCE[0]}")/build-faiss-avx2.sh"
# playwright-core only (no browser download: the tests drive Debian's chromium).
if [ "$browser_tests" = 1 ]; then
  npm ci --prefix "$(dirname "${BASH_SOURCE[0]}")/../tests/console" --prefer-offline --no-audit \
    --no-fund --loglevel=error
fi
