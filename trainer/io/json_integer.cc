#include "trainer/io/json_integer.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace hier::io {

std::optional<int64_t> JsonInteger(const nlohmann::json& value) {
  if (value.is_number_unsigned()) {
    const auto unsigned_value = value.get<uint64_t>();
    if (unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<int64_t>(unsigned_value);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return std::nullopt;
}

int64_t JsonIntegerAt(const nlohmann::json& object, const char* key) {
  const nlohmann::json& value = object.at(key);
  const std::optional<int64_t> integer = JsonInteger(value);
  if (!integer.has_value()) {
    throw std::invalid_argument(std::string(key) + " is " + value.dump() + ", not an integer");
  }
  return *integer;
}

}  // namespace hier::io
