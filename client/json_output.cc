#include "client/json_output.h"

#include <charconv>
#include <cstdlib>

namespace hier::client {

std::string DumpJson(const JsonValue& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

double FloatForJson(float value) {
  char text[64];
  const std::to_chars_result written = std::to_chars(text, text + sizeof(text) - 1, value);
  *written.ptr = '\0';
  return std::strtod(text, nullptr);
}

}  // namespace hier::client
