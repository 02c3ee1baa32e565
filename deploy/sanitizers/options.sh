# Runtime options of the sanitizers, for deploy/run-sanitizers.sh and for running one test binary
# of build-asan/ or build-tsan/ by hand:
#
#   source deploy/sanitizers/options.sh [REPORT_DIR]
#
# Every report goes to a file REPORT_DIR/<sanitizer>.<pid> (default: stderr), so that a report
# from a child process (hier-server, hier-train started by the end-to-end tests) is not lost when
# the test does not look at how that child ended; run-sanitizers.sh fails when any such file is
# written. Only what a run needs is set; each option says why.
# shellcheck shell=bash

hier_sanitizers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hier_sanitizer_reports="${1:-}"

# hier_sanitizer_log NAME: the log_path option for NAME's reports, or nothing (stderr).
hier_sanitizer_log() {
  if [[ -n "$hier_sanitizer_reports" ]]; then echo ":log_path=$hier_sanitizer_reports/$1"; fi
}

# AddressSanitizer.
# - detect_leaks=1: LeakSanitizer at every process exit (the default on Linux, stated because
#   leaks are reports like any other here); what is not ours to fix is in lsan.supp.
# Nothing else is changed. In particular no detect_odr_violation=0: LibTorch, FAISS, gRPC and
# protobuf are not instrumented, so their globals are never checked for ODR.
export ASAN_OPTIONS="detect_leaks=1$(hier_sanitizer_log asan)"
# LeakSanitizer: the suppressions for leaks inside prebuilt libraries (each entry says why).
export LSAN_OPTIONS="suppressions=$hier_sanitizers_dir/lsan.supp:print_suppressions=0"
# UndefinedBehaviorSanitizer: the build has -fno-sanitize-recover=undefined (the first report
# aborts); print_stacktrace=1 because the default report is one line without a stack.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1$(hier_sanitizer_log ubsan)"
# ThreadSanitizer.
# - suppressions=tsan.supp: reports whose frames lie in the OpenMP runtime (libgomp) and OpenBLAS,
#   which are not instrumented (tsan.supp says why that is a false positive).
# - second_deadlock_stack=1: a lock-order report shows where both locks were taken.
# - halt_on_error=0 (the default): a run reports every race before it exits with exitcode 66.
export TSAN_OPTIONS="suppressions=$hier_sanitizers_dir/tsan.supp:second_deadlock_stack=1$(hier_sanitizer_log tsan)"
unset -f hier_sanitizer_log
unset hier_sanitizers_dir hier_sanitizer_reports
