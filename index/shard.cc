#include "index/shard.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hier::index {

// More shards than this would be a typo, not a cluster.
constexpr int kMaxShards = 1024;

std::string ShardSpec::ToString() const { return absl::StrCat(index, "/", count); }

absl::StatusOr<ShardSpec> ParseShard(const std::string& text, const char* flag) {
  const std::vector<std::string> parts = absl::StrSplit(text, '/');
  ShardSpec shard;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &shard.index) ||
      !absl::SimpleAtoi(parts[1], &shard.count) || shard.count < 1 || shard.count > kMaxShards ||
      shard.index < 0 || shard.index >= shard.count) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": \"", text, "\" is not I/N with 0 <= I < N <= ", kMaxShards, " (e.g. 0/2)"));
  }
  return shard;
}

}  // namespace hier::index
