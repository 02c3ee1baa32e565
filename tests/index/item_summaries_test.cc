#include "index/item_summaries.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace hier::index {
namespace {

std::vector<int64_t> IdsOf(const std::vector<ListedItem>& page) {
  std::vector<int64_t> ids;
  for (const ListedItem& item : page) ids.push_back(item.id);
  return ids;
}

TEST(ItemSummariesTest, PagesHoldTheSmallestIdsAfterTheStartInOrder) {
  ItemSummaries summaries;
  // Ids spread over the 64 maps and out of order, including the extremes of int64.
  std::vector<int64_t> ids = {std::numeric_limits<int64_t>::max(), 5, -7, 1000, 3, 64, 128,
                              std::numeric_limits<int64_t>::min(), 0, 99};
  std::vector<std::string> keys, labels;
  for (const int64_t id : ids) {
    keys.push_back("k" + std::to_string(id));
    labels.push_back(id % 2 == 0 ? "even" : "odd");
  }
  summaries.Put(ids, keys, labels);

  const std::vector<ListedItem> first = summaries.Page(std::nullopt, 4, "");
  EXPECT_EQ(IdsOf(first), (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -7, 0, 3}));
  EXPECT_EQ(first[1].summary.key, "k-7");
  EXPECT_EQ(IdsOf(summaries.Page(3, 4, "")), (std::vector<int64_t>{5, 64, 99, 128}));
  EXPECT_EQ(IdsOf(summaries.Page(128, 4, "")),
            (std::vector<int64_t>{1000, std::numeric_limits<int64_t>::max()}));
  EXPECT_TRUE(summaries.Page(std::numeric_limits<int64_t>::max(), 4, "").empty());
  EXPECT_EQ(IdsOf(summaries.Page(std::nullopt, 10, "odd")),
            (std::vector<int64_t>{-7, 3, 5, 99, std::numeric_limits<int64_t>::max()}));
  EXPECT_TRUE(summaries.Page(std::nullopt, 0, "").empty());

  summaries.Remove(std::vector<int64_t>{-7, 0});
  EXPECT_EQ(IdsOf(summaries.Page(std::nullopt, 3, "")),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 3, 5}));
}

}  // namespace
}  // namespace hier::index
