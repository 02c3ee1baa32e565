// One blocking unary call with the connection's deadline and token, its status as absl::Status.
#pragma once

#include <grpcpp/client_context.h>

#include "absl/status/statusor.h"
#include "client/connection.h"
#include "client/status_text.h"

namespace hier::client {

// E.g. UnaryCall(connection, stub.get(), &hier::v1::Retrieval::Stub::GetItem, request).
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> UnaryCall(const Connection& connection, Stub* stub,
                                   grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                                const Request&, Response*),
                                   const Request& request) {
  grpc::ClientContext context;
  connection.Prepare(&context);
  Response response;
  absl::Status status = FromGrpcStatus((stub->*method)(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

}  // namespace hier::client
