// Builds compact JSON text incrementally (objects, arrays, strings, numbers) for --json output.
//
// The caller keeps the nesting balanced; commas are placed automatically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace hier::client {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The key of the next value inside an object.
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Int(int64_t value);
  // Shortest text that reads back as the same double; NaN and infinities become null.
  JsonWriter& Double(double value);
  // The same at float precision ("0.1", not "0.10000000149011612").
  JsonWriter& Float(float value);
  JsonWriter& Bool(bool value);
  // Already-serialised JSON (e.g. a protobuf message's), inserted as one value.
  JsonWriter& Raw(absl::string_view json);

  const std::string& str() const { return out_; }

 private:
  void BeforeValue();

  std::string out_;
  std::vector<bool> has_elements_;  // per open object or array
  bool after_key_ = false;
};

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view text);

}  // namespace hier::client
