#include "server/training/job_store.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "server/training/sqlite_job_store.h"
#ifdef HIER_HAVE_POSTGRES
#include "server/training/postgres_job_store.h"
#endif

namespace hier::server {

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const index::StoreLocation& location,
                                                         const std::string& state_dir) {
  if (index::IsPostgresUri(location.uri)) {
#ifdef HIER_HAVE_POSTGRES
    absl::StatusOr<std::unique_ptr<PostgresJobStore>> store = PostgresJobStore::Open(location);
    if (!store.ok()) return store.status();
    return std::unique_ptr<JobStore>(*std::move(store));
#else
    return index::NoPostgresSupport();
#endif
  }
  absl::StatusOr<std::unique_ptr<SqliteJobStore>> store =
      SqliteJobStore::Open((std::filesystem::path(state_dir) / "jobs.db").string());
  if (!store.ok()) return store.status();
  return std::unique_ptr<JobStore>(*std::move(store));
}

absl::StatusOr<std::string> ConfigToJson(const hier::v1::TrainingConfig& config) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(config, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("config: cannot be written as JSON: ", std::string(status.message())));
  }
  return json;
}

absl::Status ConfigFromJson(const std::string& json, hier::v1::TrainingConfig* config) {
  if (const auto parsed = google::protobuf::util::JsonStringToMessage(json, config);
      !parsed.ok()) {
    return absl::DataLossError(
        absl::StrCat("an unreadable config: ", std::string(parsed.message())));
  }
  return absl::OkStatus();
}

std::string JobStateName(hier::v1::JobState state) {
  std::string name = hier::v1::JobState_Name(state);
  constexpr std::string_view kPrefix = "JOB_STATE_";
  if (name.rfind(kPrefix, 0) == 0) name.erase(0, kPrefix.size());
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

bool IsTerminal(hier::v1::JobState state) {
  return state == hier::v1::JOB_STATE_SUCCEEDED || state == hier::v1::JOB_STATE_FAILED ||
         state == hier::v1::JOB_STATE_CANCELLED || state == hier::v1::JOB_STATE_INTERRUPTED;
}

}  // namespace hier::server
