// hier-server --router assembled: the cluster's topology read from the store, the public services
// answered by routing to the replicas (router_services.h), health SERVING while every shard has a
// live replica serving one model version, and metrics (the gRPC series plus router_metrics.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/app/server_app.h"

namespace hier::server {

class RouterApp : public ServingProcess {
 public:
  // Needs options.store (a PostgreSQL URI); uses the listening, TLS, token, message-size, drain
  // and metrics options as a server does.
  static absl::StatusOr<std::unique_ptr<RouterApp>> Start(const ServerOptions& options);
  ~RouterApp() override;

  int port() const override;
  int metrics_port() const override;
  int http_port() const override;
  const std::vector<std::string>& notices() const override;
  absl::Status Shutdown() override;

 private:
  struct State;
  explicit RouterApp(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace hier::server
