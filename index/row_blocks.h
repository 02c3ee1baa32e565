// Rows of a fixed number of floats kept in blocks of kRowsPerBlock rows, so that adding rows never
// moves the ones already held: a std::vector of a million 128-d points would copy all 512 MB
// when it reallocates, under the index's exclusive lock, stalling every search for that long.
//
// Thread-safety: none of its own (HyperbolicIndex's lock guards it).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace hier::index {

class RowBlocks {
 public:
  static constexpr int64_t kRowsPerBlock = 4096;

  explicit RowBlocks(int64_t width) : width_(width) {}

  int64_t size() const { return size_; }
  const float* row(int64_t r) const {
    return &blocks_[r / kRowsPerBlock][(r % kRowsPerBlock) * width_];
  }
  float* row(int64_t r) { return &blocks_[r / kRowsPerBlock][(r % kRowsPerBlock) * width_]; }

  void PushBack(const float* values);
  // Drops the last row (and a block left empty behind another empty one).
  void PopBack();
  void Clear();
  // Bytes the blocks hold.
  int64_t memory_bytes() const;

 private:
  const int64_t width_;
  int64_t size_ = 0;
  std::vector<std::unique_ptr<float[]>> blocks_;
};

}  // namespace hier::index
