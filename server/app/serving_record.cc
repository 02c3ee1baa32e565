#include "server/app/serving_record.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "trainer/io/atomic_file.h"

namespace hier::server {
namespace fs = std::filesystem;

namespace {

std::string RecordPath(const std::string& state_dir) {
  return (fs::path(state_dir) / "serving.json").string();
}

}  // namespace

absl::StatusOr<std::optional<ServingRecord>> ReadServingRecord(const std::string& state_dir) {
  const std::string path = RecordPath(state_dir);
  std::error_code error;
  if (!fs::exists(path, error)) return std::nullopt;
  try {
    const nlohmann::json json = nlohmann::json::parse(io::ReadFile(path));
    ServingRecord record{json.at("checkpoint").get<std::string>(),
                         json.at("gallery").get<std::string>()};
    if (record.gallery.empty() || record.gallery.find('/') != std::string::npos) {
      return absl::DataLossError(absl::StrCat(path, ": gallery is not a folder name"));
    }
    return record;
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what()));
  }
}

absl::Status WriteServingRecord(const std::string& state_dir, const ServingRecord& record) {
  const nlohmann::json json = {{"checkpoint", record.checkpoint}, {"gallery", record.gallery}};
  try {
    io::WriteFileAtomically(RecordPath(state_dir), json.dump(2) + "\n");
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("writing the serving record: ", e.what()));
  }
  return absl::OkStatus();
}

std::string GalleryPath(const std::string& state_dir, const std::string& gallery) {
  return (fs::path(state_dir) / "galleries" / (gallery.empty() ? "replica" : gallery)).string();
}

}  // namespace hier::server
