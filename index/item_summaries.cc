#include "index/item_summaries.h"

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

}  // namespace hier::index
