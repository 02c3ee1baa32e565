#include "server/training/job_config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "trainer/train/train_config.h"

namespace hier::server {
namespace {

namespace fs = std::filesystem;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::json;

constexpr size_t kMaxNameLength = 64;

Json ScalarToJson(const google::protobuf::Message& message, const FieldDescriptor& field,
                  int index) {
  const google::protobuf::Reflection& r = *message.GetReflection();
  const bool repeated = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return repeated ? r.GetRepeatedInt32(message, &field, index) : r.GetInt32(message, &field);
    case FieldDescriptor::CPPTYPE_INT64:
      return repeated ? r.GetRepeatedInt64(message, &field, index) : r.GetInt64(message, &field);
    case FieldDescriptor::CPPTYPE_UINT32:
      return repeated ? r.GetRepeatedUInt32(message, &field, index) : r.GetUInt32(message, &field);
    case FieldDescriptor::CPPTYPE_UINT64:
      return repeated ? r.GetRepeatedUInt64(message, &field, index) : r.GetUInt64(message, &field);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return repeated ? r.GetRepeatedDouble(message, &field, index) : r.GetDouble(message, &field);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return repeated ? r.GetRepeatedFloat(message, &field, index) : r.GetFloat(message, &field);
    case FieldDescriptor::CPPTYPE_BOOL:
      return repeated ? r.GetRepeatedBool(message, &field, index) : r.GetBool(message, &field);
    case FieldDescriptor::CPPTYPE_STRING:
      return repeated ? r.GetRepeatedString(message, &field, index) : r.GetString(message, &field);
    default:
      return nullptr;  // TrainingConfig has no enum or message fields
  }
}

// "--batch-size: must be ..." from the trainer becomes "config.batch_size: must be ...".
std::string FieldMessage(const std::string& trainer_message) {
  if (trainer_message.rfind("--", 0) != 0) return "config: " + trainer_message;
  const size_t end = trainer_message.find_first_of(": ", 2);
  std::string flag = trainer_message.substr(2, end == std::string::npos ? end : end - 2);
  for (char& c : flag) {
    if (c == '-') c = '_';
  }
  const std::string rest = end == std::string::npos ? "" : trainer_message.substr(end);
  return flag == "config" ? "config" + rest : "config." + flag + rest;
}

bool HasDotDot(const std::string& path) {
  for (const fs::path& part : fs::path(path)) {
    if (part == "..") return true;
  }
  return false;
}

// Whether `path` is `root` or inside it (both absolute and canonical).
bool IsUnder(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (const fs::path& part : root) {
    if (part.empty()) continue;  // the trailing "" of a root written with a final '/'
    if (p == path.end() || *p != part) return false;
    ++p;
  }
  return true;
}

absl::StatusOr<fs::path> Canonical(const std::string& path, const std::string& field) {
  std::error_code error;
  fs::path absolute = fs::absolute(path, error);
  if (!error) absolute = fs::weakly_canonical(absolute, error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": cannot resolve '", path, "': ", error.message()));
  }
  return absolute;
}

// The canonical form of `value` when it lies under a root, else the error naming `field`.
absl::StatusOr<std::string> ConfinedPath(const std::string& value, const std::string& field,
                                         const std::vector<fs::path>& roots,
                                         const std::vector<std::string>& root_names) {
  if (HasDotDot(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must not contain a '..' component, got '", value, "'"));
  }
  absl::StatusOr<fs::path> resolved = Canonical(value, field);
  if (!resolved.ok()) return resolved.status();
  for (const fs::path& root : roots) {
    if (IsUnder(*resolved, root)) return resolved->string();
  }
  return absl::PermissionDeniedError(
      absl::StrCat(field, ": ", resolved->string(), " is outside the server's data roots (",
                   root_names.empty() ? "none configured" : absl::StrJoin(root_names, ", "), ")"));
}

}  // namespace

std::string ToTrainerJson(const hier::v1::TrainingConfig& config) {
  Json json = Json::object();
  const google::protobuf::Descriptor& descriptor = *config.GetDescriptor();
  const google::protobuf::Reflection& reflection = *config.GetReflection();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor& field = *descriptor.field(i);
    if (field.is_repeated()) {
      const int size = reflection.FieldSize(config, &field);
      if (size == 0) continue;
      Json values = Json::array();
      for (int j = 0; j < size; ++j) values.push_back(ScalarToJson(config, field, j));
      json[field.name()] = std::move(values);
    } else if (reflection.HasField(config, &field)) {
      json[field.name()] = ScalarToJson(config, field, 0);
    }
  }
  return json.dump(2, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

absl::StatusOr<hier::v1::TrainingConfig> CheckTrainingConfig(
    const hier::v1::TrainingConfig& config, const std::vector<std::string>& data_roots) {
  train::TrainConfig trainer;
  try {
    train::ApplyJson(ToTrainerJson(config), trainer, "the request");
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(FieldMessage(e.what()));
  }

  std::vector<fs::path> roots;
  std::vector<std::string> root_names;
  for (const std::string& root : data_roots) {
    absl::StatusOr<fs::path> resolved = Canonical(root, "data root");
    if (!resolved.ok()) return absl::InternalError(resolved.status().message());
    roots.push_back(*resolved);
    root_names.push_back(resolved->string());
  }
  hier::v1::TrainingConfig checked = config;
  struct PathField {
    const char* name;
    std::string* trainer_value;
    bool set;
    void (hier::v1::TrainingConfig::*setter)(const std::string&);
  };
  const PathField paths[] = {
      {"data_dir", &trainer.data_dir, config.has_data_dir(),
       &hier::v1::TrainingConfig::set_data_dir},
      {"pretrained", &trainer.pretrained, config.has_pretrained(),
       &hier::v1::TrainingConfig::set_pretrained},
      {"backbone_file", &trainer.backbone_file, config.has_backbone_file(),
       &hier::v1::TrainingConfig::set_backbone_file},
      {"groups", &trainer.groups, config.has_groups(), &hier::v1::TrainingConfig::set_groups},
  };
  for (const PathField& path : paths) {
    // data_dir always has a value (the trainer's default when unset); the others may be empty.
    if (path.trainer_value->empty()) continue;
    absl::StatusOr<std::string> confined =
        ConfinedPath(*path.trainer_value, absl::StrCat("config.", path.name), roots, root_names);
    if (!confined.ok()) return confined.status();
    *path.trainer_value = *confined;
    if (path.set) (checked.*path.setter)(*confined);
  }

  try {
    train::Validate(trainer);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(FieldMessage(e.what()));
  }
  return checked;
}

absl::Status CheckJobName(const std::string& name) {
  if (name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: at most ", kMaxNameLength, " characters, got ", name.size()));
  }
  for (const char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!allowed) {
      return absl::InvalidArgumentError(absl::StrCat(
          "name: only letters, digits, '_', '.' and '-' are allowed, got '", name, "'"));
    }
  }
  return absl::OkStatus();
}

std::string MakeJobId(const std::string& name, std::chrono::system_clock::time_point now,
                      uint16_t random) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &utc);
  char suffix[8];
  std::snprintf(suffix, sizeof(suffix), "%04x", static_cast<unsigned>(random));
  return absl::StrCat(name.empty() ? "job" : name, "-", stamp, "-", suffix);
}

}  // namespace hier::server
