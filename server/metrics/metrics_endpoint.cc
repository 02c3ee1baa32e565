#include "server/metrics/metrics_endpoint.h"

#include <httplib.h>

#include <string>
#include <utility>

#include "prometheus/text_serializer.h"

namespace hier::server {
namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextContentType[] = "text/plain; charset=utf-8";
// Scrapes come rarely and one at a time; a second thread keeps a stalled client from holding
// Prometheus off until the read timeout.
constexpr int kThreads = 2;
constexpr size_t kMaxBody = 1024;  // requests carry none

void AddRoutes(httplib::Server& server, const prometheus::Registry& registry) {
  server.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(prometheus::TextSerializer().Serialize(registry.Collect()),
                         kMetricsContentType);
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("Prometheus metrics are at /metrics\n", kTextContentType);
  });
  const auto not_allowed = [](const httplib::Request&, httplib::Response& response) {
    response.status = 405;
    response.set_header("Allow", "GET, HEAD");
  };
  for (const char* path : {"/metrics", "/"}) {
    server.Post(path, not_allowed);
    server.Put(path, not_allowed);
    server.Delete(path, not_allowed);
    server.Patch(path, not_allowed);
    server.Options(path, not_allowed);
  }
  server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (response.body.empty()) {
      response.set_content("HTTP " + std::to_string(response.status) + "\n", kTextContentType);
    }
  });
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)) {}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen_address, std::shared_ptr<prometheus::Registry> registry) {
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint(std::move(registry)));
  HttpListenerOptions options;
  options.listen = listen_address;
  options.flag = "--metrics-listen";
  options.max_body_bytes = kMaxBody;
  options.threads = kThreads;
  options.requests_per_connection = 1;  // a scrape is one request; the connection goes with it
  const prometheus::Registry& served = *endpoint->registry_;
  absl::StatusOr<std::unique_ptr<HttpListener>> listener = HttpListener::Start(
      options, [&served](httplib::Server& server) { AddRoutes(server, served); });
  if (!listener.ok()) return listener.status();
  endpoint->listener_ = *std::move(listener);
  return endpoint;
}

}  // namespace hier::server
