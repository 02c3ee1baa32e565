#include "trainer/core/recall.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace hier::testing {
namespace {

// Points on a line through the origin: Poincaré distance grows with |a - b| along it, so the
// neighbours are known by hand.
at::Tensor OnALine(std::vector<double> xs) {
  return at::stack({at::tensor(xs, at::kDouble), at::zeros({int64_t(xs.size())}, at::kDouble)}, 1);
}

TEST(RecallTest, HandComputedCaseWithSelfExclusion) {
  // Gallery = queries; on a line d(a, b) = 2 artanh(|a - b| / (1 - ab)) for c = 1. Neighbours
  // without self: q0: 1,2,3,4; q1: 0,2,3,4; q2: 3,1,0,4; q3: 2,4,1,0; q4: 3,2,1,0.
  // First same-label neighbour: q0 at 1, q1 at 1, q2 at 4, q3 never, q4 at 2.
  const at::Tensor x = OnALine({0.0, 0.1, 0.5, 0.6, 0.9});
  const at::Tensor labels = at::tensor({0, 0, 1, 2, 1}, at::kLong);
  const core::RecallQuery set{x, labels, at::arange(5, at::kLong)};
  EXPECT_EQ(core::RecallAtK(set, set, {1, 2, 3, 4}, 1.0),
            (std::vector<double>{0.4, 0.6, 0.6, 0.8}));
}

TEST(RecallTest, SelfIsCountedWhenIdsDiffer) {
  const at::Tensor x = OnALine({0.0, 0.5});
  const core::RecallQuery queries{x, at::tensor({0, 1}, at::kLong), at::tensor({0, 1}, at::kLong)};
  const core::RecallQuery gallery{x, at::tensor({0, 1}, at::kLong),
                                  at::tensor({10, 11}, at::kLong)};
  EXPECT_EQ(core::RecallAtK(queries, gallery, {1}, 0.5), std::vector<double>{1.0});
}

}  // namespace
}  // namespace hier::testing
