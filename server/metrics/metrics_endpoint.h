// Serves the registry's metrics over HTTP (GET /metrics, Prometheus text format 0.0.4) on an HTTP
// listener of its own (server/http/http_listener.h, cpp-httplib), so that scrapes never wait
// behind API calls. GET and HEAD of /metrics (any query is ignored) answer the text format, /
// answers a pointer to /metrics, other paths 404 and other methods 405.
//
// Thread-safety: port() may be called from any thread; destruction stops serving.
// Ownership: the endpoint holds a shared_ptr to the registry, which lives at least as long.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"
#include "server/http/http_listener.h"

namespace hier::server {

class MetricsEndpoint {
 public:
  // Binds listen_address and starts serving. listen_address is "host:port" (an IPv4 address or a
  // host name) or "[ipv6]:port"; port 0 takes any free port. InvalidArgument for a malformed
  // address, Unavailable when it cannot be bound; both messages name --metrics-listen.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen_address, std::shared_ptr<prometheus::Registry> registry);

  int port() const { return listener_->port(); }

 private:
  explicit MetricsEndpoint(std::shared_ptr<prometheus::Registry> registry);

  const std::shared_ptr<prometheus::Registry> registry_;  // read by the listener's handlers
  std::unique_ptr<HttpListener> listener_;                // declared last: stops first
};

}  // namespace hier::server
