#!/usr/bin/env bash
# Runs the test suites under the sanitizers (gcc's, with ccache like deploy/build.sh):
#
#   asan  every CTest suite built with AddressSanitizer + UndefinedBehaviorSanitizer (and
#         LeakSanitizer at each exit) into build-asan/ (or $HIER_ASAN_BUILD_DIR);
#   tsan  the suites that run the project's code on several threads at once, built with
#         ThreadSanitizer into build-tsan/ (or $HIER_TSAN_BUILD_DIR).
#
#   bash deploy/run-sanitizers.sh [asan|tsan|all]      (default: all)
#
# Exits non-zero when a test fails or any process (a test binary or a hier-server/hier-train it
# starts) writes a sanitizer report; the reports are printed and kept in <build>/sanitizer-reports.
# Runtime options and suppressions: deploy/sanitizers/ (each one says why). Dependencies are
# installed by deploy/install-deps.sh, which this script does not run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
which="${1:-all}"
case "$which" in
  asan | tsan | all) ;;
  *)
    echo "usage: run-sanitizers.sh [asan|tsan|all]" >&2
    exit 2
    ;;
esac
jobs="$(nproc)"
# ccache keys on paths relative to the checkout, so clones in other folders share its entries.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"

# configure BUILD_DIR SANITIZER_FLAGS: a RelWithDebInfo tree (line numbers in reports) without the
# benchmarks (not tests; they would only be compiled once more).
configure() {
  local build="$1" flags="$2"
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHIER_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; return 1; }
}

# run_ctest NAME BUILD_DIR CTEST_ARGS...: runs CTest with every report written to a file of
# BUILD_DIR/sanitizer-reports, then fails if a test failed or any report was written.
run_ctest() {
  local name="$1" build="$2"
  shift 2
  local reports="$build/sanitizer-reports"
  rm -rf "$reports"
  mkdir -p "$reports"
  local status=0
  (
    # shellcheck source=sanitizers/options.sh
    source "$root/deploy/sanitizers/options.sh" "$reports"
    ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
  ) || status=$?
  local files
  files="$(find "$reports" -type f | sort)"
  if [[ -n "$files" ]]; then
    local file
    while IFS= read -r file; do
      echo "=== $file" >&2
      cat "$file" >&2
    done <<<"$files"
    echo "run-sanitizers: $name: $(wc -l <<<"$files") report file(s) in $reports" >&2
    status=1
  fi
  if ((status != 0)); then
    echo "run-sanitizers: $name failed" >&2
    return 1
  fi
  echo "run-sanitizers: $name: no report" >&2
}

run_asan() {
  local build="${HIER_ASAN_BUILD_DIR:-$root/build-asan}"
  # -fno-sanitize-recover: the first undefined behaviour aborts (a failed test, not a line in a log).
  configure "$build" "-fsanitize=address,undefined -fno-sanitize-recover=undefined"
  cmake --build "$build" --parallel "$jobs"
  # Timeouts: the whole suite takes about 3x as long under ASan as without it; 900 s (the plain
  # run's) scaled by 3.
  run_ctest asan "$build" --timeout 2700
}

# The TSan suites: the tests that run the project's code on several threads at once, in the
# binaries without LibTorch's own thread pools: searches beside writes, rebuilds and restores
# (HyperbolicIndexTest), concurrent store writers and followers (*Concurrent*, ReplicaTest), job
# claims (JobStoreTest), the embedding batcher, the metrics under concurrent RPCs, the client's
# write ledger and the start-up frontend's hand-over.
tsan_binaries=(hier_index_test hier_server_test hier_training_test hier_client_test)
tsan_labels='index|server|client'
tsan_regex='Concurrent|HyperbolicIndexTest|ReplicaTest|JobStoreTest|EmbeddingBatcherTest'
tsan_regex+='|ServerMetricsTest|WriteLedgerTest|StartupFrontendTest'

run_tsan() {
  local build="${HIER_TSAN_BUILD_DIR:-$root/build-tsan}"
  configure "$build" "-fsanitize=thread"
  cmake --build "$build" --parallel "$jobs" --target "${tsan_binaries[@]}"
  # TSan's slow-down is about 5-15x; the longest of these suites takes about 10 s plain.
  run_ctest tsan "$build" --timeout 900 -L "$tsan_labels" -R "$tsan_regex"
}

case "$which" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all)
    status=0
    run_asan || status=1
    run_tsan || status=1
    exit "$status"
    ;;
esac
