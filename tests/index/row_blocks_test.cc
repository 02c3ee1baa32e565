// RowBlocks: rows stay where they are while more are added, across block edges, and popping
// frees blocks but keeps one spare.
#include "index/row_blocks.h"

#include <gtest/gtest.h>

#include <vector>

namespace hier::index {
namespace {

TEST(RowBlocksTest, RowsKeepTheirAddressesAndValuesAcrossBlocks) {
  constexpr int64_t kWidth = 3;
  RowBlocks blocks(kWidth);
  const int64_t rows = 2 * RowBlocks::kRowsPerBlock + 5;
  std::vector<const float*> addresses;
  for (int64_t r = 0; r < rows; ++r) {
    const float values[kWidth] = {static_cast<float>(r), 0.5f, -static_cast<float>(r)};
    blocks.PushBack(values);
    addresses.push_back(blocks.row(r));
  }
  ASSERT_EQ(blocks.size(), rows);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(blocks.row(r), addresses[r]) << r;  // never moved
    EXPECT_EQ(blocks.row(r)[0], static_cast<float>(r));
    EXPECT_EQ(blocks.row(r)[2], -static_cast<float>(r));
  }
  EXPECT_EQ(blocks.memory_bytes(), 3 * RowBlocks::kRowsPerBlock * kWidth * 4);
}

TEST(RowBlocksTest, PoppingFreesBlocksButOneSpare) {
  RowBlocks blocks(1);
  const float one = 1;
  for (int64_t r = 0; r < 3 * RowBlocks::kRowsPerBlock; ++r) blocks.PushBack(&one);
  for (int64_t r = 0; r < 2 * RowBlocks::kRowsPerBlock; ++r) blocks.PopBack();
  EXPECT_EQ(blocks.size(), RowBlocks::kRowsPerBlock);
  EXPECT_EQ(blocks.memory_bytes(), 2 * RowBlocks::kRowsPerBlock * 4);  // the one in use, a spare
  blocks.Clear();
  EXPECT_EQ(blocks.size(), 0);
  EXPECT_EQ(blocks.memory_bytes(), 0);
  blocks.PushBack(&one);
  EXPECT_EQ(blocks.row(0)[0], 1);
}

}  // namespace
}  // namespace hier::index
