// The file that keeps a candidate stage between runs: what it was built for (kind, dimension,
// curvature), the store's last change it covers (its high-water mark), the serialized stage, and
// a CRC-32 over all of it. Written atomically; a truncated, altered or foreign file reads back as
// DataLoss, never as a wrong index.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hier::index {

struct Snapshot {
  std::string kind;  // the candidate stage's kind (candidate_stage.h)
  int64_t dim = 0;
  double c = 0;
  int64_t high_water_seq = 0;  // the last store change the stage includes
  std::vector<uint8_t> candidates;
};

// Replaces the file at `path` with `snapshot` (temp file, fsync, rename, fsync the directory).
absl::Status WriteSnapshotFile(const std::string& path, const Snapshot& snapshot);

// NotFound when there is no file; DataLoss naming the path and the problem when it is cut short,
// fails its checksum or is not a snapshot.
absl::StatusOr<Snapshot> ReadSnapshotFile(const std::string& path);

}  // namespace hier::index
