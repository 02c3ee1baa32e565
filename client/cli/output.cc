#include "client/cli/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/table.h"

namespace hier::client::cli {

double Norm(const hier::v1::Vector& vector) {
  double sum = 0;
  for (float value : vector.values()) sum += static_cast<double>(value) * value;
  return std::sqrt(sum);
}

std::string Preview(const hier::v1::Vector& vector, int count) {
  std::string text;
  const int shown = std::min(count, vector.values_size());
  for (int i = 0; i < shown; ++i) {
    absl::StrAppend(&text, i > 0 ? " " : "", FormatFixed(vector.values(i), 6));
  }
  if (vector.values_size() > shown) absl::StrAppend(&text, " ...");
  return text;
}

std::string ProtoJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  // Printing a valid message only fails on unresolvable Any types, which the API does not use.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields,
                 std::ostream* out) {
  size_t width = 0;
  for (const auto& field : fields) width = std::max(width, field.first.size());
  for (const auto& [name, value] : fields) {
    if (value.empty()) {
      *out << name << "\n";
    } else {
      *out << absl::StrFormat("%-*s  %s\n", static_cast<int>(width), name, value);
    }
  }
}

std::string RecallText(const google::protobuf::Map<std::string, double>& recall) {
  // "R@10" after "R@2": by the number after '@', then by name.
  auto order = [](const std::string& name) {
    int64_t k = std::numeric_limits<int64_t>::max();
    const size_t at = name.find('@');
    if (at != std::string::npos) (void)absl::SimpleAtoi(name.substr(at + 1), &k);
    return std::make_pair(k, name);
  };
  std::map<std::pair<int64_t, std::string>, double> sorted;
  for (const auto& [name, value] : recall) sorted[order(name)] = value;
  std::string text;
  for (const auto& [key, value] : sorted) {
    absl::StrAppend(&text, text.empty() ? "" : " ", key.second, " ", FormatFixed(value, 4));
  }
  return text;
}

std::string FormatSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t total = static_cast<int64_t>(std::llround(seconds));
  const int64_t hours = total / 3600, minutes = total / 60 % 60, secs = total % 60;
  if (hours > 0) return absl::StrFormat("%dh%02dm%02ds", hours, minutes, secs);
  if (minutes > 0) return absl::StrFormat("%dm%02ds", minutes, secs);
  return absl::StrFormat("%ds", secs);
}

}  // namespace hier::client::cli
