// A binary of the project run as a child process for end-to-end tests: its output goes to a log
// file, it can be signalled and waited for, and it is killed if a test leaves it running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace hier::testing {

class ChildProcess {
 public:
  // Starts `binary` with `args`, stdout and stderr appended to `log_path`.
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::string& log_path);
  ~ChildProcess();  // SIGKILL and reap when still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void Signal(int signal_number) const;
  // The exit status once the child has exited (128 + signal when killed), or none if it is still
  // running after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool running() const { return !exit_status_.has_value(); }
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_status_;
};

// The whole content of a file ("" when it cannot be read).
std::string ReadText(const std::string& path);

// GET http://<host>:<port><path> (host an IPv4 address): the status code and body, or none when
// no answer came.
struct HttpResponse {
  int status = 0;
  std::string body;
};
std::optional<HttpResponse> HttpGet(int port, const std::string& path,
                                    const std::string& host = "127.0.0.1");

}  // namespace hier::testing
