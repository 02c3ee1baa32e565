#include "server/http/http_listener.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"

namespace hier::server {
namespace {

constexpr auto kStartPoll = std::chrono::milliseconds(1);

struct HostPort {
  std::string host;
  int port = 0;
};

// "host:port" or "[ipv6]:port", the port decimal up to 65535.
absl::StatusOr<HostPort> ParseListen(const HttpListenerOptions& options) {
  const std::string& address = options.listen;
  const auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(options.flag + ": \"" + address + "\" " + std::string(why));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return invalid("is not host:port or [ipv6]:port");
  std::string host = address.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return invalid("has an unclosed '['");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return invalid("is an IPv6 address without brackets ([ipv6]:port)");
  }
  int port = 0;
  const std::string port_text = address.substr(colon + 1);
  if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return invalid("has no port in [0, 65535]");
  }
  return HostPort{host, port};
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    const HttpListenerOptions& options, const std::function<void(httplib::Server&)>& routes) {
  absl::StatusOr<HostPort> address = ParseListen(options);
  if (!address.ok()) return address.status();
  auto server = std::make_unique<httplib::Server>();
  const int threads = options.threads;
  server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server->set_read_timeout(options.read_timeout);
  server->set_write_timeout(options.write_timeout);
  server->set_keep_alive_timeout(options.read_timeout.count());
  server->set_payload_max_length(options.max_body_bytes);
  routes(*server);
  int port = address->port;
  if (port == 0) {
    port = server->bind_to_any_port(address->host);
    if (port < 0) port = 0;
  } else if (!server->bind_to_port(address->host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::UnavailableError(options.flag + ": cannot listen on \"" + options.listen +
                                  "\" (the address is not this machine's, or the port is taken)");
  }
  return std::unique_ptr<HttpListener>(new HttpListener(std::move(server), port));
}

HttpListener::HttpListener(std::unique_ptr<httplib::Server> server, int port)
    : server_(std::move(server)), port_(port) {
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    loop_returned_ = true;
  });
  // stop() only stops a server that is running: wait until it is (or its loop gave up), so that
  // a listener destroyed at once still stops.
  while (!server_->is_running() && !loop_returned_) std::this_thread::sleep_for(kStartPoll);
}

HttpListener::~HttpListener() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace hier::server
