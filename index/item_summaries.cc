#include "index/item_summaries.h"

#include <queue>

namespace hier::index {

void ItemSummaries::Put(absl::Span<const int64_t> ids, absl::Span<const std::string> keys,
                        absl::Span<const std::string> labels) {
  WriterLock lock(&mutex_);
  for (size_t i = 0; i < ids.size(); ++i) {
    ItemSummary& summary = summaries_[ids[i]];
    summary.key = keys[i];
    summary.label = labels[i];
  }
}

void ItemSummaries::Remove(absl::Span<const int64_t> ids) {
  WriterLock lock(&mutex_);
  for (const int64_t id : ids) summaries_.Erase(id);
}

void ItemSummaries::Clear() {
  WriterLock lock(&mutex_);
  summaries_.Clear();
}

std::vector<std::optional<ItemSummary>> ItemSummaries::Get(absl::Span<const int64_t> ids) const {
  std::vector<std::optional<ItemSummary>> found(ids.size());
  ReaderLock lock(&mutex_);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (const ItemSummary* summary = summaries_.Find(ids[i])) found[i] = *summary;
  }
  return found;
}

int64_t ItemSummaries::size() const {
  ReaderLock lock(&mutex_);
  return summaries_.size();
}

std::vector<ListedItem> ItemSummaries::Page(std::optional<int64_t> after_id, int64_t limit,
                                            const std::string& label) const {
  // A max-heap of the smallest ids seen: the largest of them leaves when a smaller one arrives.
  std::priority_queue<int64_t> smallest;
  ReaderLock lock(&mutex_);
  summaries_.ForEach([&](int64_t id, const ItemSummary& summary) {
    if ((after_id.has_value() && id <= *after_id) || (!label.empty() && summary.label != label))
      return;
    if (static_cast<int64_t>(smallest.size()) < limit) {
      smallest.push(id);
    } else if (limit > 0 && id < smallest.top()) {
      smallest.pop();
      smallest.push(id);
    }
  });
  std::vector<ListedItem> page(smallest.size());
  for (auto slot = page.rbegin(); slot != page.rend(); ++slot, smallest.pop()) {
    slot->id = smallest.top();
    slot->summary = *summaries_.Find(slot->id);
  }
  return page;
}

}  // namespace hier::index
