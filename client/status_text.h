// Converts gRPC statuses to absl::Status and prints a status the way the tools report errors.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace hier::client {

// The same code (Abseil's codes are gRPC's) and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// "NOT_FOUND: item_id: 7"; just the code ("OK", "UNIMPLEMENTED") when there is no message.
std::string StatusText(const absl::Status& status);

// The code's name, e.g. "UNAVAILABLE".
std::string StatusCodeName(absl::StatusCode code);

}  // namespace hier::client
