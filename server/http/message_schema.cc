#include "server/http/message_schema.h"

#include <google/protobuf/descriptor.h>

#include <nlohmann/json.hpp>

namespace hier::server {

std::optional<std::string> MessageSchemaJson(std::string_view full_name) {
  if (full_name.substr(0, 8) != "hier.v1.") return std::nullopt;
  const google::protobuf::Descriptor* message =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
          std::string(full_name));
  if (message == nullptr) return std::nullopt;
  nlohmann::json fields = nlohmann::json::array();
  for (int f = 0; f < message->field_count(); ++f) {
    const google::protobuf::FieldDescriptor& field = *message->field(f);
    nlohmann::json entry = {{"name", field.name()},
                            {"json_name", field.json_name()},
                            {"type", field.type_name()},
                            {"repeated", field.is_repeated()},
                            {"optional", field.has_optional_keyword()}};
    if (const google::protobuf::OneofDescriptor* oneof = field.real_containing_oneof()) {
      entry["oneof"] = oneof->name();
    }
    if (const google::protobuf::EnumDescriptor* values = field.enum_type()) {
      for (int v = 0; v < values->value_count(); ++v) {
        entry["values"].push_back(values->value(v)->name());
      }
    }
    if (const google::protobuf::Descriptor* type = field.message_type()) {
      entry["message_type"] = type->full_name();
    }
    fields.push_back(std::move(entry));
  }
  return nlohmann::json{{"message", message->full_name()}, {"fields", std::move(fields)}}.dump();
}

}  // namespace hier::server
