// The checkpoints training produced under the runs folder, named by version:
// "<run>/best" or "<run>/checkpoints/<step>" (a bare "<run>" means its best/).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/image_embedder.h"

namespace hier::server {

// FailedPrecondition naming "version" when `model` is a run's best/ while the run still trains
// (status.json says running): best/ is rewritten until the run ends, and a gallery embedded by one
// best/ would not match the next.
absl::Status CheckNotTraining(const ModelDescription& model);

class ModelCatalog {
 public:
  explicit ModelCatalog(std::string runs_dir) : runs_dir_(std::move(runs_dir)) {}

  // Every checkpoint under the runs folder whose manifest verifies, by run then version.
  std::vector<ModelDescription> List() const;

  // The checkpoint folder of `version`: InvalidArgument naming `field` when it is empty,
  // absolute or climbs out with "..", NotFound when no such checkpoint exists.
  absl::StatusOr<std::string> Resolve(const std::string& version,
                                      const char* field = "version") const;

  const std::string& runs_dir() const { return runs_dir_; }

 private:
  const std::string runs_dir_;
};

}  // namespace hier::server
