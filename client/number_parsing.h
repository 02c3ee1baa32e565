// Parses the numbers the tools take on the command line, naming the flag or argument on error.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hier::client {

// `what` names the value in errors, e.g. "--k" or "ID".
absl::StatusOr<int64_t> ParseInt64(absl::string_view what, absl::string_view text);
absl::StatusOr<double> ParseDouble(absl::string_view what, absl::string_view text);

// A comma-separated list of finite floats, e.g. "0.1, -0.2,3e-2"; an error names the element.
absl::StatusOr<std::vector<float>> ParseVector(absl::string_view what, absl::string_view text);

}  // namespace hier::client
