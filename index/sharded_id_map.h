// A map keyed by item id kept as 64 hash maps chosen by a hash of the id. A hash map growing past
// its capacity rehashes every entry at once, under whatever lock guards it: one map of a million
// ids takes over 100 ms to do so, stalling every search waiting on that lock; each of 64 maps
// rehashes a 64th of the entries.
//
// ShardedIdMap<bool> serves as a set of ids.
//
// Thread-safety: none of its own (its owner's lock guards it).
#pragma once

#include <array>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "index/shard.h"

namespace hier::index {

template <typename Value>
class ShardedIdMap {
 public:
  // The value of `id`, or null.
  const Value* Find(int64_t id) const {
    const Map& map = MapOf(id);
    const auto found = map.find(id);
    return found == map.end() ? nullptr : &found->second;
  }
  bool Contains(int64_t id) const { return MapOf(id).contains(id); }
  // The value of `id`, default-constructed first when absent.
  Value& operator[](int64_t id) { return MapOf(id)[id]; }
  void Erase(int64_t id) { MapOf(id).erase(id); }
  void Clear() {
    for (Map& map : maps_) map.clear();
  }
  // Room for `entries` in all, spread as the hash spreads ids.
  void Reserve(int64_t entries) {
    for (Map& map : maps_) map.reserve(static_cast<size_t>(entries / kMaps + entries / 256 + 16));
  }
  bool empty() const { return size() == 0; }
  // Calls visit(id, value) for every entry, in no particular order.
  template <typename Visit>
  void ForEach(const Visit& visit) const {
    for (const Map& map : maps_) {
      for (const auto& [id, value] : map) visit(id, value);
    }
  }
  int64_t size() const {
    int64_t entries = 0;
    for (const Map& map : maps_) entries += static_cast<int64_t>(map.size());
    return entries;
  }
  // Bytes of the slots (not what a value owns elsewhere).
  int64_t memory_bytes() const {
    int64_t bytes = 0;
    for (const Map& map : maps_) {
      bytes += static_cast<int64_t>(map.capacity() * (sizeof(typename Map::value_type) + 1));
    }
    return bytes;
  }

 private:
  using Map = absl::flat_hash_map<int64_t, Value>;
  static constexpr uint64_t kMaps = 64;
  Map& MapOf(int64_t id) { return maps_[MixId(id) % kMaps]; }
  const Map& MapOf(int64_t id) const { return maps_[MixId(id) % kMaps]; }

  std::array<Map, kMaps> maps_;
};

}  // namespace hier::index
