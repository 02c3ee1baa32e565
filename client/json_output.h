// The CLI's and hier-bench's --json output: nlohmann's JSON with keys in the order written, dumped
// compactly in one place (NaN and infinities as null, bytes that are not UTF-8 replaced, so a
// file name never makes the output fail).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hier::client {

using JsonValue = nlohmann::ordered_json;

// `value` as compact JSON text (no trailing newline).
std::string DumpJson(const JsonValue& value);

// A float as the double that prints like it ("0.1", not "0.10000000149011612").
double FloatForJson(float value);

}  // namespace hier::client
