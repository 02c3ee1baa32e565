// Which shard of a split gallery an item belongs to. A cluster of N shards gives each item to shard
// ShardOf(id, N): SplitMix64's finalizer of the id (as an unsigned 64-bit number) modulo N. It is
// fixed forever (a replica, a router and an offline re-shard must all agree), spreads sequential
// and patterned ids evenly, and needs nothing but the id.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace hier::index {

// SplitMix64's output function: a bijection of 64-bit numbers that mixes every input bit into
// every output bit.
inline uint64_t MixId(int64_t id) {
  uint64_t z = static_cast<uint64_t>(id) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The shard (0 .. count - 1) of item `id` in a gallery split `count` ways (count >= 1).
inline int ShardOf(int64_t id, int count) {
  return static_cast<int>(MixId(id) % static_cast<uint64_t>(count));
}

// One shard of a gallery split `count` ways; the default (0 of 1) is the whole gallery.
struct ShardSpec {
  int index = 0;
  int count = 1;

  bool whole() const { return count == 1; }
  bool Holds(int64_t id) const { return count == 1 || ShardOf(id, count) == index; }
  // "I/N", as --shard takes it.
  std::string ToString() const;
};

// Parses "I/N" (0 <= I < N, 1 <= N <= 1024); InvalidArgument naming `flag` otherwise.
absl::StatusOr<ShardSpec> ParseShard(const std::string& text, const char* flag);

}  // namespace hier::index
