// What a form needs to know of an API message, from its descriptor: each field's JSON name, type,
// and whether it repeats or tracks presence (an unset `optional` field takes the server's default).
// The console builds its training form from hier.v1.TrainingConfig's schema, so a field added to
// the proto appears in the form without a change to the console.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hier::server {

// {"message": "hier.v1.TrainingConfig", "fields": [{"name": "data_dir", "json_name": "dataDir",
// "type": "string", "repeated": false, "optional": true}, ...]} in field order; enums add
// "values" (their names), messages "message_type". None for a name that is not a message of the
// API's package (hier.v1).
std::optional<std::string> MessageSchemaJson(std::string_view full_name);

}  // namespace hier::server
