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

// Starts `binary` with `args`; returns its pid, which is also its process group id. The caller
// reaps it (waitpid). FailedPrecondition naming the binary when it cannot be executed,
// Unavailable when the log cannot be opened or the system refuses a new process.
absl::StatusOr<pid_t> SpawnInNewProcessGroup(const std::string& binary,
                                             const std::vector<std::string>& args,
                                             const std::string& log_path);

// "exit status 2" or "killed by signal 9 (Killed)" for a waitpid status.
std::string DescribeWaitStatus(int wait_status);

// Whether `pid` is a live process whose command line holds "--run-dir <run_dir>": a trainer a
// previous server started for that run, still running.
bool IsTrainerOf(pid_t pid, const std::string& run_dir);

}  // namespace hier::server
