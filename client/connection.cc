#include "client/connection.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/image_files.h"
#include "client/status_macros.h"

namespace hier::client {
namespace {

// gRPC rejects metadata values outside printable ASCII; say so before the first call does.
absl::Status CheckToken(const std::string& token) {
  for (char ch : token) {
    if (ch < 0x21 || ch > 0x7e) {
      return absl::InvalidArgumentError(
          "--token: only printable ASCII without spaces is allowed in a bearer token");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Connection> Connection::Create(const ConnectionOptions& options) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server: empty address");
  if (!(options.timeout_seconds > 0) || !std::isfinite(options.timeout_seconds)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--timeout: must be a positive number of seconds, not ", options.timeout_seconds));
  }
  HIER_RETURN_IF_ERROR(CheckToken(options.token));

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls_ca_file.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    absl::StatusOr<std::string> pem = ReadFileBytes(options.tls_ca_file);
    if (!pem.ok()) {
      return absl::Status(pem.status().code(), absl::StrCat("--tls-ca: ", pem.status().message()));
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *std::move(pem);
    credentials = grpc::SslCredentials(ssl);
  }
  std::string authorization =
      options.token.empty() ? std::string() : absl::StrCat("Bearer ", options.token);
  return Connection(grpc::CreateChannel(options.server, credentials), std::move(authorization),
                    absl::Seconds(options.timeout_seconds));
}

void Connection::Prepare(grpc::ClientContext* context, absl::Duration budget) const {
  if (budget != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + budget));
  }
  if (!authorization_.empty()) context->AddMetadata("authorization", authorization_);
}

}  // namespace hier::client
