#include "trainer/train/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <c10/util/Exception.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

namespace hier::train {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(20);

}  // namespace

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  TORCH_CHECK(fd >= 0, "--nproc: cannot open a socket: ", std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  TORCH_CHECK(ok, "--nproc: cannot find a free port: ", std::strerror(errno));
  return ntohs(address.sin_port);
}

namespace {

// In the child: becomes rank `rank` and never returns.
[[noreturn]] void ExecRank(const LaunchOptions& options, int64_t rank, int port, pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(1);  // the launcher died before prctl took effect
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(options.nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(options.program.c_str()));
  for (const std::string& arg : options.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  ::execv(options.program.c_str(), argv.data());
  std::fprintf(stderr, "hier-train: rank %lld: cannot run %s: %s\n", static_cast<long long>(rank),
               options.program.c_str(), std::strerror(errno));
  ::_exit(127);
}

std::string Describe(int64_t rank, int status) {
  if (WIFSIGNALED(status)) {
    return "rank " + std::to_string(rank) + " was killed by signal " +
           std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
  }
  return "rank " + std::to_string(rank) + " exited with code " +
         std::to_string(WEXITSTATUS(status));
}

class RankGroup {
 public:
  explicit RankGroup(const LaunchOptions& options) : options_(options) {}

  void Start() {
    const int port = FreeLoopbackPort();
    const pid_t parent = ::getpid();
    for (int64_t rank = 0; rank < options_.nproc; ++rank) {
      const pid_t pid = ::fork();
      TORCH_CHECK(pid >= 0, "--nproc: cannot start rank ", rank, ": ", std::strerror(errno));
      if (pid == 0) ExecRank(options_, rank, port, parent);
      pids_.push_back(pid);
    }
  }

  void SignalRunning(int signal) {
    for (const pid_t pid : pids_) {
      if (pid > 0) ::kill(pid, signal);
    }
  }

  // Reaps ranks that have ended; returns false while some still run.
  bool ReapFinished(LaunchResult& result, bool stopping) {
    bool all_done = true;
    for (size_t rank = 0; rank < pids_.size(); ++rank) {
      if (pids_[rank] <= 0) continue;
      int status = 0;
      if (::waitpid(pids_[rank], &status, WNOHANG) != pids_[rank]) {
        all_done = false;
        continue;
      }
      pids_[rank] = 0;
      const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      const bool stopped = WIFEXITED(status) && WEXITSTATUS(status) == 3;
      if (clean || (stopping && stopped) || !result.message.empty()) continue;
      // The first failure is the one to report; the others usually follow from it.
      result.message = Describe(static_cast<int64_t>(rank), status);
      result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    return all_done;
  }

 private:
  const LaunchOptions& options_;
  std::vector<pid_t> pids_;  // 0 once reaped
};

}  // namespace

LaunchResult LaunchLocalRanks(const LaunchOptions& options, const std::atomic<bool>* stop) {
  TORCH_CHECK(options.nproc >= 1, "--nproc: must be >= 1, got ", options.nproc);
  RankGroup ranks(options);
  ranks.Start();
  LaunchResult result;
  bool stopping = false;
  std::optional<Clock::time_point> kill_at;
  while (!ranks.ReapFinished(result, stopping)) {
    if (!stopping && stop != nullptr && stop->load()) {
      stopping = true;
      ranks.SignalRunning(SIGTERM);
    }
    if (!result.message.empty() && !kill_at) {
      ranks.SignalRunning(SIGTERM);
      kill_at = Clock::now() + options.grace;
    }
    if (kill_at && Clock::now() >= *kill_at) ranks.SignalRunning(SIGKILL);
    std::this_thread::sleep_for(kPollInterval);
  }
  if (result.message.empty() && stopping) result.exit_code = 3;
  return result;
}

}  // namespace hier::train
