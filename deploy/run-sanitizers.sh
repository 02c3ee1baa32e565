#!/usr/bin/env bash
# Runs the test suites under the sanitizers (gcc's, with ccache like deploy/build.sh):
#
#   asan  every CTest suite built with AddressSanitizer + UndefinedBehaviorSanitizer (and
#         LeakSanitizer at each exit) into build-asan/ (or $HIER_ASAN_BUILD_DIR);
#   tsan  the index's concurrency tests (searches beside writes, concurrent stores, replicas),
#         built with ThreadSanitizer into build-tsan/ (or $HIER_TSAN_BUILD_DIR); run_tsan below
#         says which tests are left out and why.
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
# With debug information ccache hashes the working directory too, unless told not to; the paths
# in the objects are made relative to the checkout instead, so clones share entries.
export CCACHE_NOHASHDIR=1

# configure BUILD_DIR SANITIZER_FLAGS: -O1 with line tables only (-g1: the line numbers reports
# need, at a fraction of full debug information's compile time), without the benchmarks (not
# tests; they would only be compiled once more).
configure() {
  local build="$1" flags="$2"
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g1 -DNDEBUG" -DHIER_BUILD_BENCHMARKS=OFF \
    -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer -fdebug-prefix-map=$root=." \
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

# The TSan suite: the index's tests whose threads are the project's own: searches beside writes
# and deletes (SearchesRun), concurrent writers and followers of one store (Concurrent), replicas
# over one PostgreSQL store (ReplicaTest), a killed writer (Crash). The index and its stores lock
# with pthread and std primitives on purpose (rw_mutex.h), which TSan sees. Left out: tests whose
# work runs on OpenMP teams (multi-threaded scans, FAISS's adds and training inside a rebuild):
# Debian's libgomp is not instrumented, so TSan does not see its barriers and reports what they
# order; and the server's and client's suites, which lock with absl::Mutex and run gRPC, both
# Debian builds without TSan, so every access their locks order would be reported too.
tsan_regex='Concurrent|SearchesRun|ReplicaTest|Crash'

run_tsan() {
  local build="${HIER_TSAN_BUILD_DIR:-$root/build-tsan}"
  configure "$build" "-fsanitize=thread"
  cmake --build "$build" --parallel "$jobs" --target hier_index_test
  # TSan's slow-down is about 5-15x; these tests take about 10 s plain.
  run_ctest tsan "$build" --timeout 900 -L index -R "$tsan_regex"
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
