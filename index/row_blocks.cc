#include "index/row_blocks.h"

#include <algorithm>

namespace hier::index {

void RowBlocks::PushBack(const float* values) {
  if (size_ == static_cast<int64_t>(blocks_.size()) * kRowsPerBlock) {
    blocks_.push_back(std::make_unique<float[]>(kRowsPerBlock * width_));
  }
  std::copy_n(values, width_, row(size_));
  ++size_;
}

void RowBlocks::PopBack() {
  --size_;
  // Keep one spare block, so that a row added and removed at a block's edge allocates nothing.
  const int64_t needed = (size_ + kRowsPerBlock - 1) / kRowsPerBlock;
  if (static_cast<int64_t>(blocks_.size()) > needed + 1) blocks_.pop_back();
}

void RowBlocks::Clear() {
  size_ = 0;
  blocks_.clear();
}

int64_t RowBlocks::memory_bytes() const {
  return static_cast<int64_t>(blocks_.size()) * kRowsPerBlock * width_ *
         static_cast<int64_t>(sizeof(float));
}

}  // namespace hier::index
