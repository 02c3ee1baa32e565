// Fuzz target: --shard's parser. What it accepts prints back as the same I/N and holds exactly
// the ids ShardOf gives it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "index/shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<hier::index::ShardSpec> shard = hier::index::ParseShard(text, "--shard");
  if (!shard.ok()) return 0;
  if (shard->index < 0 || shard->index >= shard->count) __builtin_trap();
  absl::StatusOr<hier::index::ShardSpec> again =
      hier::index::ParseShard(shard->ToString(), "--shard");
  if (!again.ok() || again->index != shard->index || again->count != shard->count) {
    __builtin_trap();
  }
  for (int64_t id = -3; id < 3; ++id) {
    if (shard->Holds(id) != (hier::index::ShardOf(id, shard->count) == shard->index)) {
      __builtin_trap();
    }
  }
  return 0;
}
