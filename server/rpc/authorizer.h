// Bearer-token access control: with a token configured, mutating and admin calls must carry
// "authorization: Bearer <token>" metadata; read-only calls too when reads are protected.
#pragma once

#include <grpcpp/server_context.h>

#include <functional>
#include <string>

#include "absl/status/status.h"

namespace hier::server {

enum class Access { kRead, kWrite };

class Authorizer {
 public:
  // An empty token leaves every call open.
  Authorizer(std::string token, bool protect_reads);

  // Ok, or Unauthenticated naming the `authorization` metadata (missing, malformed or wrong token).
  absl::Status Check(const grpc::ServerContext& context, Access access) const;

  // Runs `handler` when Check allows the call; the gRPC status of whichever answered (INTERNAL
  // when the handler throws).
  grpc::Status Run(const grpc::ServerContext& context, Access access,
                   const std::function<absl::Status()>& handler) const;

 private:
  const std::string token_;
  const bool protect_reads_;
};

}  // namespace hier::server
