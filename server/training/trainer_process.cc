#include "server/training/trainer_process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace hier::server {
namespace {

// Owns the posix_spawn attribute and file-action objects.
class SpawnSetup {
 public:
  SpawnSetup() {
    attr_ok_ = posix_spawnattr_init(&attr_) == 0;
    actions_ok_ = posix_spawn_file_actions_init(&actions_) == 0;
  }
  ~SpawnSetup() {
    if (attr_ok_) posix_spawnattr_destroy(&attr_);
    if (actions_ok_) posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // 0 or the first error number.
  int Configure(const std::string& log_path) {
    if (!attr_ok_ || !actions_ok_) return ENOMEM;
    sigset_t empty;
    sigemptyset(&empty);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) {
      sigaddset(&defaults, signal_number);
    }
    int rc = posix_spawnattr_setflags(
        &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr_, 0);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr_, &empty);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr_, &defaults);
    if (rc == 0) {
      rc = posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    }
    if (rc == 0) {
      rc = posix_spawn_file_actions_addopen(&actions_, STDOUT_FILENO, log_path.c_str(),
                                            O_WRONLY | O_CREAT | O_APPEND, 0644);
    }
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, STDOUT_FILENO, STDERR_FILENO);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    // Nothing else of the server's (a descriptor opened without O_CLOEXEC, e.g. a socket) may
    // stay open in a trainer, which can outlive the server.
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions_, STDERR_FILENO + 1);
#endif
    return rc;
  }

  const posix_spawnattr_t* attr() const { return &attr_; }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }

 private:
  posix_spawnattr_t attr_;
  posix_spawn_file_actions_t actions_;
  bool attr_ok_ = false;
  bool actions_ok_ = false;
};

}  // namespace

absl::StatusOr<pid_t> SpawnInNewProcessGroup(const std::string& binary,
                                             const std::vector<std::string>& args,
                                             const std::string& log_path, bool exit_with_parent) {
  if (::access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("trainer: cannot execute ", binary, ": ", std::strerror(errno)));
  }
  // Opened here first so a bad log path is reported as such, not as a failed exec.
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the log ", log_path, ": ", std::strerror(errno)));
  }
  ::close(log);
  SpawnSetup setup;
  if (const int rc = setup.Configure(log_path); rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot prepare to start ", binary, ": ", std::strerror(rc)));
  }
  std::vector<std::string> argv_storage;
  argv_storage.reserve(args.size() + 1);
  argv_storage.push_back(binary);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    env_storage.emplace_back(*variable);
  }
  if (exit_with_parent) {
    env_storage.push_back(absl::StrCat(kExitWithParentVariable, "=", ::getpid()));
  }
  std::vector<char*> env;
  for (std::string& variable : env_storage) env.push_back(variable.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  if (const int rc =
          posix_spawn(&pid, binary.c_str(), setup.actions(), setup.attr(), argv.data(), env.data());
      rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot start ", binary, ": ", std::strerror(rc)));
  }
  return pid;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exit status ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const int signal_number = WTERMSIG(wait_status);
    return absl::StrCat("killed by signal ", signal_number, " (", strsignal(signal_number), ")");
  }
  return absl::StrCat("wait status ", wait_status);
}

bool IsTrainerOf(pid_t pid, const std::string& run_dir) {
  if (pid <= 0) return false;
  std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
  if (!in) return false;
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < cmdline.size();) {
    const size_t end = cmdline.find('\0', start);
    args.push_back(cmdline.substr(start, end == std::string::npos ? end : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--run-dir" && args[i + 1] == run_dir) return true;
  }
  return false;
}

}  // namespace hier::server
