// A call's gRPC deadline on the steady clock, for waits inside the server (no deadline: an hour).
#pragma once

#include <grpcpp/server_context.h>

#include <algorithm>
#include <chrono>

namespace hier::server {

inline std::chrono::steady_clock::time_point CallDeadline(const grpc::ServerContext& context) {
  constexpr std::chrono::hours kLongest(1);
  const auto left = std::min<std::chrono::system_clock::duration>(
      context.deadline() - std::chrono::system_clock::now(), kLongest);
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
}

}  // namespace hier::server
