#include "client/status_text.h"

#include "absl/strings/str_cat.h"

namespace hier::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::string StatusText(const absl::Status& status) {
  if (status.ok() || status.message().empty()) return StatusCodeName(status.code());
  return absl::StrCat(StatusCodeName(status.code()), ": ", status.message());
}

std::string StatusCodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

}  // namespace hier::client
