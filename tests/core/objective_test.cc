#include "trainer/core/objective.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/core/error_message.h"
#include "tests/core/test_data.h"

namespace hier::testing {
namespace {

core::ObjectiveOptions Options(core::MetricLossKind metric, double lambda_hier) {
  core::ObjectiveOptions o(/*num_classes=*/8, /*dim=*/16);
  o.metric(metric).lambda_metric(1.5).lambda_hier(lambda_hier);
  o.hier().num_proxies(32).topk(4).c(0.1);
  return o;
}

class ObjectiveTest : public ::testing::TestWithParam<core::MetricLossKind> {};

TEST_P(ObjectiveTest, TotalIsTheWeightedSumAndEveryPartLearns) {
  at::manual_seed(3);
  core::Objective objective(Options(GetParam(), 0.5));
  const at::Tensor z = BallPoints(16, 16, 0.1, 2).requires_grad_(true);
  const core::ObjectiveTerms terms = objective->forward(z, GroupedLabels(16, 2), 7);
  EXPECT_NEAR(terms.total.item<double>(),
              1.5 * terms.metric.item<double>() + 0.5 * terms.hier.item<double>(), 1e-9);
  terms.total.backward();
  EXPECT_GT(z.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(objective->hier->proxies.grad().abs().sum().item<double>(), 0);
  if (objective->proxy_anchor) {
    EXPECT_GT(objective->proxy_anchor->proxies.grad().abs().sum().item<double>(), 0);
  }
}

TEST_P(ObjectiveTest, ZeroHierWeightLeavesHierOut) {
  core::Objective objective(Options(GetParam(), 0.0));
  EXPECT_TRUE(objective->hier.is_empty());
  const core::ObjectiveTerms terms =
      objective->forward(BallPoints(16, 16, 0.1, 4), GroupedLabels(16, 2), 7);
  EXPECT_FALSE(terms.hier.defined());
  EXPECT_DOUBLE_EQ(terms.total.item<double>(), 1.5 * terms.metric.item<double>());
}

INSTANTIATE_TEST_SUITE_P(Metrics, ObjectiveTest,
                         ::testing::Values(core::MetricLossKind::kProxyAnchor,
                                           core::MetricLossKind::kMultiSimilarity,
                                           core::MetricLossKind::kSupCon));

TEST(ObjectiveOptionsTest, RejectsBadSettingsByName) {
  EXPECT_THROW(core::ParseMetricLoss("Triplet"), c10::Error);
  EXPECT_EQ(core::ParseMetricLoss("SupCon"), core::MetricLossKind::kSupCon);
  auto expect_error = [](const core::ObjectiveOptions& o, const std::string& fragment) {
    const std::string message = ErrorMessage([&] { core::Objective objective(o); });
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  };
  expect_error(Options(core::MetricLossKind::kProxyAnchor, -1), "lambda_hier must be finite");
  expect_error(Options(core::MetricLossKind::kProxyAnchor, 0).lambda_metric(0), "both 0");
  core::ObjectiveOptions mismatched = Options(core::MetricLossKind::kMultiSimilarity, 0.5);
  mismatched.hier().dim(8);
  expect_error(mismatched, "hier.dim (8) differs from dim (16)");
}

}  // namespace
}  // namespace hier::testing
