// The gRPC status for an absl::Status: the same code (Abseil's codes are gRPC's) and message.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace hier::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace hier::server
