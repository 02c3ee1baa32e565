// Splits a list of files into batches small enough for one gRPC message each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hier::client {

// Below gRPC's default 4 MiB receive limit, leaving room for the rest of the message.
inline constexpr int64_t kMaxBatchBytes = 3 * 1024 * 1024 + 512 * 1024;

struct FileBatch {
  size_t begin = 0;  // [begin, end) indexes into the files
  size_t end = 0;
};

// Consecutive batches of at most `max_items` files and at most `max_bytes` in all, except that a
// single larger file makes a batch of its own. NOT_FOUND naming a file whose size cannot be read.
absl::StatusOr<std::vector<FileBatch>> PlanFileBatches(const std::vector<std::string>& paths,
                                                       size_t max_items,
                                                       int64_t max_bytes = kMaxBatchBytes);

}  // namespace hier::client
