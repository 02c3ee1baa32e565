// Integers read from JSON files. nlohmann's get<int64_t>() converts a JSON float as well, and one
// out of range (1e300) has no conversion (undefined behaviour), so a file's integer is read only
// from a JSON integer within int64's range.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

namespace hier::io {

// The integer `value` holds; none when it is not a JSON integer or lies outside int64.
std::optional<int64_t> JsonInteger(const nlohmann::json& value);

// The integer under `key` of `object`; throws std::invalid_argument naming the key when it is not
// one, and nlohmann::json::exception when `object` has no such key or is not an object.
int64_t JsonIntegerAt(const nlohmann::json& object, const char* key);

}  // namespace hier::io
