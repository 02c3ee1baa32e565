#include "server/model/model_catalog.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "trainer/io/atomic_file.h"

namespace hier::server {
namespace fs = std::filesystem;

namespace {

// The checkpoint folders of one run: best/ first, then checkpoints/<step>/ in step order.
std::vector<fs::path> CheckpointsOf(const fs::path& run) {
  std::vector<fs::path> folders;
  std::error_code error;
  if (fs::exists(run / "best" / "manifest.json", error)) folders.push_back(run / "best");
  std::vector<fs::path> steps;
  for (const auto& entry : fs::directory_iterator(run / "checkpoints", error)) {
    if (fs::exists(entry.path() / "manifest.json", error)) steps.push_back(entry.path());
  }
  std::sort(steps.begin(), steps.end());
  folders.insert(folders.end(), steps.begin(), steps.end());
  return folders;
}

}  // namespace

absl::Status CheckNotTraining(const ModelDescription& model) {
  if (fs::path(model.checkpoint_dir).filename() != "best") return absl::OkStatus();
  std::string state;
  try {
    state = nlohmann::json::parse(io::ReadFile((fs::path(model.run_dir) / "status.json").string()))
                .value("state", "");
  } catch (const std::exception&) {
    return absl::OkStatus();  // no readable status: not a run in progress
  }
  if (state != "running") return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("version: ", model.version,
                   " is still training and its best/ changes until it ends; load "
                   "it when the run has finished, or one of its checkpoints/<step>"));
}

bool ModelCatalog::FileIdentity::operator==(const FileIdentity& other) const {
  return std::tie(device, inode, size, modified_ns) ==
         std::tie(other.device, other.inode, other.size, other.modified_ns);
}

std::optional<ModelCatalog::FileIdentity> ModelCatalog::IdentityOf(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return FileIdentity{static_cast<uint64_t>(info.st_dev), static_cast<uint64_t>(info.st_ino),
                      static_cast<uint64_t>(info.st_size),
                      info.st_mtim.tv_sec * 1'000'000'000LL + info.st_mtim.tv_nsec};
}

std::optional<ModelDescription> ModelCatalog::Describe(const std::string& checkpoint_dir) const {
  // Identified before reading: a manifest replaced meanwhile is read again next time.
  const std::optional<FileIdentity> manifest = IdentityOf(checkpoint_dir + "/manifest.json");
  if (!manifest.has_value()) return std::nullopt;
  {
    absl::MutexLock lock(&mutex_);
    const auto known = verified_.find(checkpoint_dir);
    if (known != verified_.end() && known->second.manifest == *manifest) {
      return known->second.description;
    }
  }
  absl::StatusOr<ModelDescription> model = ReadModelDescription(checkpoint_dir);
  if (!model.ok()) return std::nullopt;
  absl::MutexLock lock(&mutex_);
  verified_[checkpoint_dir] = {*manifest, *model};
  return *std::move(model);
}

bool SameCheckpoint(const std::string& a, const std::string& b) {
  std::error_code error_a, error_b;
  const fs::path canonical_a = fs::weakly_canonical(a, error_a);
  const fs::path canonical_b = fs::weakly_canonical(b, error_b);
  if (error_a || error_b) return fs::path(a).lexically_normal() == fs::path(b).lexically_normal();
  return canonical_a == canonical_b;
}

std::vector<ModelDescription> ModelCatalog::List() const {
  std::vector<fs::path> runs;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(runs_dir_, error)) {
    if (entry.is_directory(error)) runs.push_back(entry.path());
  }
  std::sort(runs.begin(), runs.end());
  std::vector<ModelDescription> models;
  absl::flat_hash_set<std::string> seen;
  for (const fs::path& run : runs) {
    for (const fs::path& checkpoint : CheckpointsOf(run)) {
      seen.insert(checkpoint.string());
      // A checkpoint being written or damaged is left out of the list.
      if (std::optional<ModelDescription> model = Describe(checkpoint.string())) {
        models.push_back(*std::move(model));
      }
    }
  }
  // Forget checkpoints that are gone (training keeps only the last few).
  absl::MutexLock lock(&mutex_);
  absl::erase_if(verified_, [&](const auto& entry) { return !seen.contains(entry.first); });
  return models;
}

absl::StatusOr<std::string> ModelCatalog::Resolve(const std::string& version,
                                                  const char* field) const {
  const fs::path relative(version);
  if (version.empty() || relative.is_absolute() ||
      std::any_of(relative.begin(), relative.end(),
                  [](const fs::path& part) { return part == ".."; })) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", version, "\" is not a model version such as \"<run>/best\""));
  }
  absl::StatusOr<std::string> checkpoint =
      ResolveCheckpoint((fs::path(runs_dir_) / relative).string(), field);
  if (!checkpoint.ok()) {
    return absl::NotFoundError(
        absl::StrCat(field, ": no model \"", version, "\" under ", runs_dir_));
  }
  return checkpoint;
}

}  // namespace hier::server
