// Serves the registry's metrics over plain HTTP (GET /metrics, Prometheus text format 0.0.4) on
// its own thread — a small server of its own because civetweb's fixed thread stacks cannot start
// in a process that loads LibTorch (glibc refuses a stack smaller than the static TLS block).
//
// One thread accepts connections and answers them one at a time, each with "Connection: close":
// Prometheus scrapes rarely, and a deadline on every connection keeps a stalled client from
// holding the others off for long. GET and HEAD of /metrics (any query is ignored) answer the
// text format, / answers a pointer to /metrics, other paths 404 and other methods 405.
// Thread-safety: port() may be called from any thread; destruction must not race with it.
// Ownership: the endpoint holds a shared_ptr to the registry, which lives at least as long.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"

namespace hier::server {

class MetricsEndpoint {
 public:
  // Binds listen_address and starts serving. listen_address is "host:port" (an IPv4 address or a
  // host name, which is resolved and the first of its addresses that binds is used) or
  // "[ipv6]:port"; port 0 takes any free port. InvalidArgument for a malformed address,
  // Unavailable when it cannot be resolved or bound; both messages name --metrics-listen.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen_address, std::shared_ptr<prometheus::Registry> registry);

  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // Stops accepting, drops a connection still sending its request, finishes a response being
  // written (at most one second more for a client that stopped reading), joins the thread.
  ~MetricsEndpoint();

  // The bound port (the one chosen for port 0).
  int port() const { return port_; }

 private:
  MetricsEndpoint(std::shared_ptr<prometheus::Registry> registry, int listen_fd, int wake_fd,
                  int port);

  // The serving thread: accepts and answers connections until wake_fd_ becomes readable.
  void Serve();

  const std::shared_ptr<prometheus::Registry> registry_;
  const int listen_fd_;  // non-blocking, close-on-exec
  const int wake_fd_;    // eventfd; readable once the destructor asks the thread to stop
  const int port_;
  std::thread thread_;  // runs Serve(); the only user of the sockets after Start
};

}  // namespace hier::server
