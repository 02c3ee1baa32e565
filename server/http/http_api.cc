#include "server/http/http_api.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "server/http/console_routes.h"


namespace hier::server {
namespace {

// The services the HTTP face reaches (health and reflection stay gRPC's).
const std::vector<std::string>& PublicServices() {
  static const auto* const services = new std::vector<std::string>{
      "hier.v1.Retrieval", "hier.v1.Models", "hier.v1.Hierarchy", "hier.v1.Training"};
  return *services;
}

}  // namespace

HttpApi::HttpApi(std::unique_ptr<JsonGateway> gateway) : gateway_(std::move(gateway)) {}

absl::StatusOr<std::unique_ptr<HttpApi>> HttpApi::Start(const HttpApiOptions& options,
                                                        grpc::Server& server) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  arguments.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  std::unique_ptr<HttpApi> api(new HttpApi(
      std::make_unique<JsonGateway>(server.InProcessChannel(arguments), PublicServices())));
  HttpListenerOptions listener;
  listener.listen = options.listen;
  listener.flag = "--http-listen";
  // JSON carries bytes as base64 (4/3) and adds names and punctuation around them.
  listener.max_body_bytes = static_cast<size_t>(options.max_message_bytes) * 2;
  listener.threads = options.threads;
  api->stream_slots_.max = std::max(1, options.threads / 2);
  const JsonGateway& gateway = *api->gateway_;
  StreamSlots& slots = api->stream_slots_;
  absl::StatusOr<std::unique_ptr<HttpListener>> started =
      HttpListener::Start(listener, [&gateway, &slots](httplib::Server& routes) {
        AddApiRoutes(routes, gateway, slots);
        AddConsoleRoutes(routes);
      });
  if (!started.ok()) return started.status();
  api->listener_ = *std::move(started);
  return api;
}

}  // namespace hier::server
