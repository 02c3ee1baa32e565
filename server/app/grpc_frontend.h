// The gRPC server every role of hier-server listens with (a replica or one machine, and a router):
// the listening address, TLS, message limits, handler threads, health, reflection and the metrics
// interceptor, around the services the role answers.
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "server/app/server_app.h"
#include "server/metrics/server_metrics.h"

namespace hier::server {

// Builds and starts the server; `*port` is the port bound. `unmatched`, when given, answers every
// method no service has. Errors name the flag at fault.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpcFrontend(
    const ServerOptions& options, const std::vector<grpc::Service*>& services,
    ServerMetrics& metrics, int* port, grpc::CallbackGenericService* unmatched = nullptr);

}  // namespace hier::server
