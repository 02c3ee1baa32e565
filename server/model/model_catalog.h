// The checkpoints training produced under the runs folder, named by version:
// "<run>/best" or "<run>/checkpoints/<step>" (a bare "<run>" means its best/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/model/image_embedder.h"

namespace hier::server {

// FailedPrecondition naming "version" when `model` is a run's best/ while the run still trains
// (status.json says running): best/ is rewritten until the run ends, and a gallery embedded by one
// best/ would not match the next.
absl::Status CheckNotTraining(const ModelDescription& model);

// Whether two checkpoint folder paths name the same folder, however each was spelled (relative
// to the working directory or absolute, through symbolic links, with "." or "..").
bool SameCheckpoint(const std::string& a, const std::string& b);

class ModelCatalog {
 public:
  explicit ModelCatalog(std::string runs_dir) : runs_dir_(std::move(runs_dir)) {}

  // Every checkpoint under the runs folder whose manifest verifies, by run then version. Each
  // checkpoint's files are hashed once per manifest file (a rewritten checkpoint has a new one);
  // loading a model verifies them again.
  std::vector<ModelDescription> List() const;

  // The checkpoint folder of `version`: InvalidArgument naming `field` when it is empty,
  // absolute or climbs out with "..", NotFound when no such checkpoint exists.
  absl::StatusOr<std::string> Resolve(const std::string& version,
                                      const char* field = "version") const;

  const std::string& runs_dir() const { return runs_dir_; }

 private:
  // Which file a manifest is: a checkpoint published again gets another inode.
  struct FileIdentity {
    uint64_t device = 0, inode = 0, size = 0;
    int64_t modified_ns = 0;
    bool operator==(const FileIdentity& other) const;
  };
  struct Verified {
    FileIdentity manifest;
    ModelDescription description;
  };
  static std::optional<FileIdentity> IdentityOf(const std::string& path);
  // The description of the checkpoint at `checkpoint_dir`, or nullopt when it does not verify.
  std::optional<ModelDescription> Describe(const std::string& checkpoint_dir) const;

  const std::string runs_dir_;
  mutable absl::Mutex mutex_;
  // By checkpoint folder, for those the last List saw.
  mutable absl::flat_hash_map<std::string, Verified> verified_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hier::server
