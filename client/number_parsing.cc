#include "client/number_parsing.h"

#include <cmath>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hier::client {

absl::StatusOr<int64_t> ParseInt64(absl::string_view what, absl::string_view text) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", text, "' is not an integer"));
  }
  return value;
}

absl::StatusOr<double> ParseDouble(absl::string_view what, absl::string_view text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", text, "' is not a number"));
  }
  return value;
}

absl::StatusOr<std::vector<float>> ParseVector(absl::string_view what, absl::string_view text) {
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty vector"));
  }
  std::vector<float> values;
  for (absl::string_view element : absl::StrSplit(text, ',')) {
    float value = 0;
    if (!absl::SimpleAtof(element, &value) || !std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": element ", values.size() + 1, " ('",
                                                     absl::StripAsciiWhitespace(element),
                                                     "') is not a finite number"));
    }
    values.push_back(value);
  }
  return values;
}

}  // namespace hier::client
