// Starting hier-train as a child process the server can stop as a whole: a process group of its
// own (so a signal reaches every --nproc rank), an empty signal mask and default handlers for
// the stop signals (the server blocks SIGTERM/SIGINT in all its threads and a child inherits the
// mask), stdin from /dev/null, stdout and stderr appended to a log file, no other descriptor of
// the server's open.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hier::server {

// The environment variable that makes hier-train stop (as on SIGTERM) when the thread that
// started it ends, e.g. because the server died: its value is that server's pid.
inline constexpr char kExitWithParentVariable[] = "HIER_TRAIN_EXIT_WITH_PARENT";

// Starts `binary` with `args`; returns its pid, which is also its process group id. The caller
// reaps it (waitpid). With `exit_with_parent`, the child gets kExitWithParentVariable (call it
// from a thread that lives as long as the child should). FailedPrecondition naming the binary
// when it cannot be executed, Unavailable when the log cannot be opened or the system refuses a
// new process.
absl::StatusOr<pid_t> SpawnInNewProcessGroup(const std::string& binary,
                                             const std::vector<std::string>& args,
                                             const std::string& log_path,
                                             bool exit_with_parent = false);

// "exit status 2" or "killed by signal 9 (Killed)" for a waitpid status.
std::string DescribeWaitStatus(int wait_status);

// Whether `pid` is a live process whose command line holds "--run-dir <run_dir>": a trainer a
// previous server started for that run, still running.
bool IsTrainerOf(pid_t pid, const std::string& run_dir);

}  // namespace hier::server
