// An HTTP server (cpp-httplib) on threads of its own, bound to a listen address, with the limits
// that keep slow or oversized clients from holding it: read and write timeouts, a body limit and
// a fixed pool of handler threads. The routes are the caller's.
//
// Thread-safety: port() may be called from any thread; destruction stops the server and waits
// for its threads (a handler still running finishes first).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace hier::server {

struct HttpListenerOptions {
  // "host:port" (an IPv4 address or a host name) or "[ipv6]:port"; port 0 takes any free port.
  std::string listen;
  std::string flag;  // the flag that set `listen`, named in errors ("--http-listen")
  size_t max_body_bytes = 1 << 20;
  std::chrono::seconds read_timeout{5};   // a client that sends nothing for this long is dropped
  std::chrono::seconds write_timeout{5};  // a client that takes nothing for this long is dropped
  int threads = 8;                        // requests answered at once (each holds one thread)
  int requests_per_connection = 5;        // then the connection is closed (1: no keep-alive)
};

class HttpListener {
 public:
  // Binds, lets `routes` register its handlers, and starts serving. InvalidArgument for a
  // malformed address, Unavailable when it cannot be bound; both name options.flag.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(
      const HttpListenerOptions& options, const std::function<void(httplib::Server&)>& routes);

  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;
  ~HttpListener();

  int port() const { return port_; }

 private:
  HttpListener(std::unique_ptr<httplib::Server> server, int port);

  std::unique_ptr<httplib::Server> server_;
  const int port_;
  std::atomic<bool> loop_returned_{false};  // the accept loop has ended
  std::thread thread_;                      // runs the accept loop
};

}  // namespace hier::server
