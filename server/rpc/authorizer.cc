#include "server/rpc/authorizer.h"

#include <string_view>
#include <utility>

#include "server/rpc/grpc_status.h"

namespace hier::server {
namespace {

// Compares in time independent of where the strings differ.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    difference |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return difference == 0;
}

}  // namespace

Authorizer::Authorizer(std::string token, bool protect_reads)
    : token_(std::move(token)), protect_reads_(protect_reads) {}

absl::Status Authorizer::Check(const grpc::ServerContext& context, Access access) const {
  if (token_.empty() || (access == Access::kRead && !protect_reads_)) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) {
    return absl::UnauthenticatedError(
        "authorization: this call needs a bearer token (metadata \"authorization: Bearer ...\")");
  }
  constexpr std::string_view kScheme = "Bearer ";
  const std::string_view value(found->second.data(), found->second.size());
  if (value.substr(0, kScheme.size()) != kScheme) {
    return absl::UnauthenticatedError("authorization: expected \"Bearer <token>\"");
  }
  if (!SameSecret(value.substr(kScheme.size()), token_)) {
    return absl::UnauthenticatedError("authorization: the token is not valid");
  }
  return absl::OkStatus();
}

grpc::Status Authorizer::Run(const grpc::ServerContext& context, Access access,
                             const std::function<absl::Status()>& handler) const {
  if (absl::Status allowed = Check(context, access); !allowed.ok()) return ToGrpcStatus(allowed);
  try {
    return ToGrpcStatus(handler());
  } catch (const std::exception& e) {  // e.g. memory exhausted: the call fails, the server stays
    return ToGrpcStatus(absl::InternalError(e.what()));
  }
}

}  // namespace hier::server
