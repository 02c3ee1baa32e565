// What a search result shows of each item (its key and label), kept in memory beside the index
// and changed by the same writes, so answering a search never reads the store of record (which a
// replica may not reach, and which costs a round trip per neighbour).
//
// Thread-safety: every method may be called from any thread; Get runs concurrently with itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/types/span.h"
#include "index/rw_mutex.h"
#include "index/sharded_id_map.h"

namespace hier::index {

struct ItemSummary {
  std::string key;
  std::string label;
};

// One item of a page of ItemSummaries::Page.
struct ListedItem {
  int64_t id = 0;
  ItemSummary summary;
};

class ItemSummaries {
 public:
  // Adds or replaces the summaries of `ids` (keys and labels hold one entry per id).
  void Put(absl::Span<const int64_t> ids, absl::Span<const std::string> keys,
           absl::Span<const std::string> labels);
  void Remove(absl::Span<const int64_t> ids);
  // Forgets every summary (before a reload).
  void Clear();
  // The summary of each id, none for an id not held.
  std::vector<std::optional<ItemSummary>> Get(absl::Span<const int64_t> ids) const;
  int64_t size() const;
  // Up to `limit` summaries with ids above `after_id` (every id when none; only the label's items
  // when `label` is not empty), in ascending id order: one pass keeping the `limit` smallest ids.
  std::vector<ListedItem> Page(std::optional<int64_t> after_id, int64_t limit,
                               const std::string& label) const;

 private:
  mutable RwMutex mutex_;
  ShardedIdMap<ItemSummary> summaries_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hier::index
