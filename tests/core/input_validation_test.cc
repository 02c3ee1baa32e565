// Bad input to hier_core gives an error naming the problem (or a documented result), never a crash
// or a silent NaN.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>

#include "tests/core/error_message.h"
#include "tests/core/test_data.h"
#include "trainer/core/hier_loss.h"
#include "trainer/core/metric_losses.h"
#include "trainer/core/poincare.h"
#include "trainer/core/recall.h"
#include "trainer/core/to_poincare.h"
#include "trainer/core/triplet_mining.h"

namespace hier::testing {
namespace {

struct BadInputCase {
  std::string name;
  std::function<void()> call;
  std::string message;  // a fragment the error must contain
};

void PrintTo(const BadInputCase& c, std::ostream* os) { *os << c.name; }

at::Tensor Points(int64_t n, int64_t d = 4) { return BallPoints(n, d, 0.1, 1); }

at::Tensor WithValue(at::Tensor t, double v) {
  t = t.clone();
  t.view(-1)[0] = v;
  return t;
}

core::HierLossOptions Hier(int64_t topk = 3) {
  core::HierLossOptions o(4);
  o.num_proxies(8).topk(topk);
  return o;
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

class BadInputTest : public ::testing::TestWithParam<BadInputCase> {};

TEST_P(BadInputTest, ThrowsANamedError) {
  const std::string message = ErrorMessage(GetParam().call);
  EXPECT_NE(message.find(GetParam().message), std::string::npos) << "message: " << message;
}

INSTANTIATE_TEST_SUITE_P(
    Core, BadInputTest,
    ::testing::Values(
        BadInputCase{"curvature_zero", [] { core::Expmap0(Points(2), 0.0); },
                     "curvature c must be finite and > 0, got 0"},
        BadInputCase{"curvature_negative", [] { core::DistMatrix(Points(2), Points(2), -1); },
                     "curvature c must be finite and > 0"},
        BadInputCase{"curvature_nan", [] { core::Logmap0(Points(2), kNaN); },
                     "curvature c must be finite"},
        BadInputCase{"dist_rank", [] { core::DistMatrix(Points(2).view(-1), Points(2), 0.1); },
                     "dist_matrix: x must be a 2-D [N, D] tensor, got shape [8]"},
        BadInputCase{"dist_width", [] { core::DistMatrix(Points(2, 4), Points(2, 5), 0.1); },
                     "x and y must have the same dimension, got 4 and 5"},
        BadInputCase{"dist_nan",
                     [] { core::DistMatrix(WithValue(Points(3), kNaN), Points(2), 0.1); },
                     "dist_matrix: x contains NaN or Inf"},
        BadInputCase{"dist_inf",
                     [] { core::DistMatrix(Points(3), WithValue(Points(2), kInf), 0.1); },
                     "dist_matrix: y contains NaN or Inf"},
        BadInputCase{"dist_integer",
                     [] {
                       core::DistMatrix(at::ones({2, 2}, at::kLong), Points(2, 2), 0.1);
                     },
                     "x must be a floating-point tensor"},
        BadInputCase{"to_poincare_clip",
                     [] {
                       core::ToPoincareOptions o(0.1);
                       o.clip_r(-1.0);
                       core::ToPoincare(Points(2), o);
                     },
                     "clip_r must be > 0"},
        BadInputCase{"topk_above_nodes",
                     [] { core::FindReciprocalNeighbours(at::eye(4, at::kDouble), 5); },
                     "topk must be in [1, 4]"},
        BadInputCase{"hier_topk_above_batch",
                     [] {
                       core::HierLoss l(Hier(5));
                       l->forward(Points(4), at::arange(4), 0);
                     },
                     "topk (5) exceeds the batch size (4)"},
        BadInputCase{"hier_topk_above_proxies", [] { core::HierLoss l(Hier(9)); },
                     "topk (9) exceeds num_proxies (8)"},
        BadInputCase{"hier_label_count",
                     [] {
                       core::HierLoss l(Hier());
                       l->forward(Points(6), at::arange(5), 0);
                     },
                     "labels has 5 entries but the batch has 6"},
        BadInputCase{"hier_label_dtype",
                     [] {
                       core::HierLoss l(Hier());
                       l->forward(Points(6), at::zeros({6}), 0);
                     },
                     "labels must hold integers"},
        BadInputCase{"hier_dim",
                     [] {
                       core::HierLoss l(Hier());
                       l->forward(Points(6, 5), at::arange(6), 0);
                     },
                     "z has dimension 5 but the loss was built for 4"},
        BadInputCase{"hier_nan",
                     [] {
                       core::HierLoss l(Hier());
                       l->forward(WithValue(Points(6), kNaN), at::arange(6), 0);
                     },
                     "hier_loss: z contains NaN or Inf"},
        BadInputCase{"hier_topk_one", [] { core::HierLoss l(Hier(1)); }, "topk must be >= 2"},
        BadInputCase{"hier_single_sample",
                     [] {
                       core::HierLoss l(Hier());
                       l->forward(Points(1), at::arange(1), 0);
                     },
                     "the batch needs at least 2 samples, got 1"},
        BadInputCase{"hier_triplet_range",
                     [] {
                       core::HierLoss l(Hier());
                       l->ForwardWithTriplets(
                           Points(6),
                           {at::full({3, 2}, 6, at::kLong), at::zeros({3, 1}, at::kLong)}, 0);
                     },
                     "triplets.sample_proxy indices must be in [0, 6), got [6, 6]"},
        BadInputCase{"hier_triplet_shape",
                     [] {
                       core::HierLoss l(Hier());
                       l->ForwardWithTriplets(
                           Points(6), {at::zeros({2, 2}, at::kLong), at::zeros({3, 1}, at::kLong)},
                           0);
                     },
                     "triplets.sample_proxy must be an int64 [3, T] tensor"},
        BadInputCase{"pa_label_range",
                     [] {
                       core::ProxyAnchorLoss(Points(4), at::tensor({0, 1, 2, 3}), Points(3));
                     },
                     "labels must be in [0, 3) (the number of classes), got [0, 3]"},
        BadInputCase{"ms_label_count", [] { core::MultiSimilarityLoss(Points(4), at::arange(3)); },
                     "labels has 3 entries but the batch has 4"},
        BadInputCase{"supcon_layout",
                     [] {
                       core::SupConHyperbolicLoss(Points(4), at::tensor({0, 1, 0, 1}), 2, 0.1);
                     },
                     "consecutive rows must share one label"},
        BadInputCase{
            "supcon_multiple",
            [] { core::SupConHyperbolicLoss(Points(5), at::zeros({5}, at::kLong), 2, 0.1); },
            "batch size 5 is not a multiple of images_per_class (2)"},
        BadInputCase{"recall_k",
                     [] {
                       core::RecallAtK({Points(3), at::arange(3), at::arange(3)},
                                       {Points(4), at::arange(4), at::arange(4)}, {1, 5}, 0.1);
                     },
                     "every k must be in [1, 4] (the gallery size), got 5"}),
    [](const auto& info) { return info.param.name; });

TEST(EdgeCaseTest, SingleClassBatchGivesFiniteLosses) {
  const at::Tensor z = Points(6).requires_grad_(true);
  const at::Tensor labels = at::zeros({6}, at::kLong);
  core::HierLoss hier(Hier());
  const at::Tensor total = hier->forward(z, labels, 0).loss + core::MultiSimilarityLoss(z, labels) +
                           core::ProxyAnchorLoss(z, labels, Points(2)) +
                           core::SupConHyperbolicLoss(z, labels, 2, 0.1);
  total.backward();
  EXPECT_TRUE(std::isfinite(total.item<double>()));
  EXPECT_TRUE(at::isfinite(z.grad()).all().item<bool>());
}

TEST(EdgeCaseTest, NoValidAnchorGivesAZeroPart) {
  // topk 2 on 3 nodes: any node's single neighbour gives it at most one positive, so no anchor
  // qualifies (the reference miner raises here); the part is documented as 0 with zero gradient.
  const at::Tensor sim =
      at::tensor({1.0, 0.9, 0.1, 0.9, 1.0, 0.2, 0.1, 0.2, 1.0}, at::kDouble).view({3, 3});
  const core::ReciprocalNeighbours nb = core::FindReciprocalNeighbours(sim, 2);
  EXPECT_FALSE(nb.anchor_has_triplets.any().item<bool>());
  const at::Tensor triplets = core::SampleTriplets(nb, 50, 0);
  EXPECT_EQ(triplets.size(1), 0);
  const at::Tensor dist = at::rand({3, 5}, at::kDouble).requires_grad_(true);
  const core::HierPart part = core::HierTripletLoss(dist, triplets, 0.1, 0.1, 1);
  part.loss.backward();
  EXPECT_EQ(part.loss.item<double>(), 0.0);
  EXPECT_EQ(dist.grad().abs().sum().item<double>(), 0.0);
}

TEST(EdgeCaseTest, PointsOnAndBeyondTheBoundaryStayFinite) {
  // Logmap0 of points outside the ball and distances between boundary points clamp, not NaN.
  const at::Tensor far = at::full({2, 3}, 10.0, at::kDouble);
  EXPECT_TRUE(at::isfinite(core::Logmap0(far, 1.0)).all().item<bool>());
  const at::Tensor edge = core::Project(far, 1.0);
  EXPECT_TRUE(at::isfinite(core::DistMatrix(edge, -edge, 1.0)).all().item<bool>());
}

}  // namespace
}  // namespace hier::testing
