#include "trainer/train/optimization.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>

namespace hier::testing {
namespace {

train::TrainConfig Config(const std::string& decay) {
  train::TrainConfig config;
  config.lr_decay = decay;
  config.epochs = 10;
  config.lr_decay_epochs = 3;
  config.lr_decay_gamma = 0.5;
  config.min_lr_scale = 0.1;
  return config;
}

TEST(ScheduleTest, ConstantStepAndCosine) {
  EXPECT_DOUBLE_EQ(train::ScheduleFactor(Config("none"), 77, 10), 1.0);
  const train::TrainConfig step = Config("step");
  EXPECT_DOUBLE_EQ(train::ScheduleFactor(step, 29, 10), 1.0);    // epoch 2
  EXPECT_DOUBLE_EQ(train::ScheduleFactor(step, 30, 10), 0.5);    // epoch 3
  EXPECT_DOUBLE_EQ(train::ScheduleFactor(step, 95, 10), 0.125);  // epoch 9
  const train::TrainConfig cosine = Config("cosine");
  EXPECT_DOUBLE_EQ(train::ScheduleFactor(cosine, 0, 10), 1.0);
  EXPECT_NEAR(train::ScheduleFactor(cosine, 50, 10), 0.55, 1e-12);  // half way
  EXPECT_NEAR(train::ScheduleFactor(cosine, 100, 10), 0.1, 1e-12);
}

void ExpectRates(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t g = 0; g < actual.size(); ++g) EXPECT_NEAR(actual[g], expected[g], 1e-15) << g;
}

class OptimizationTest : public ::testing::Test {
 protected:
  OptimizationTest()
      : net(model::EmbeddingNetOptions().emb(8)),
        objective(
            core::ObjectiveOptions(4, 8).hier(core::HierLossOptions(8).num_proxies(8).topk(2))) {}

  model::EmbeddingNet net;
  core::Objective objective;
};

TEST_F(OptimizationTest, GroupsScaleTheirLearningRateAndWarmUpFreezesTheBackbone) {
  train::TrainConfig config = Config("none");
  config.lr = 1e-3;
  config.batch_size = 90;  // half the reference batch: every lr halves
  config.fc_lr_scale = 2;
  config.hier_proxy_lr_scale = 50;
  config.pa_proxy_lr_scale = 100;
  config.warmup_epochs = 1;
  train::Optimization optimization(config, net, objective, /*steps_per_epoch=*/10,
                                   /*world_size=*/1);
  EXPECT_EQ(optimization.group_names(),
            (std::vector<std::string>{"backbone", "head", "hier_proxies", "class_proxies"}));
  ExpectRates(optimization.LearningRates(), {0.0, 1e-3, 2.5e-2, 5e-2});
  optimization.SetLearningRates(10);  // warm-up over
  ExpectRates(optimization.LearningRates(), {5e-4, 1e-3, 2.5e-2, 5e-2});
}

// Each scale flag reaches its own group and no other: a table of one flag changed at a time.
TEST_F(OptimizationTest, EachScaleFlagReachesItsGroup) {
  struct Case {
    double train::TrainConfig::*flag;
    size_t group;
  };
  const std::vector<Case> cases = {{&train::TrainConfig::backbone_lr_scale, 0},
                                   {&train::TrainConfig::fc_lr_scale, 1},
                                   {&train::TrainConfig::hier_proxy_lr_scale, 2},
                                   {&train::TrainConfig::pa_proxy_lr_scale, 3}};
  for (const Case& c : cases) {
    train::TrainConfig config = Config("none");
    config.lr = 1e-3;
    config.batch_size = 180;
    config.backbone_lr_scale = config.fc_lr_scale = config.hier_proxy_lr_scale =
        config.pa_proxy_lr_scale = 1;
    config.*c.flag = 7;
    train::Optimization optimization(config, net, objective, 10, 1);
    std::vector<double> expected(4, 1e-3);
    expected[c.group] = 7e-3;
    ExpectRates(optimization.LearningRates(), expected);
  }
}

TEST_F(OptimizationTest, AdamEpsilonReachesEveryGroup) {
  train::TrainConfig config = Config("none");
  config.adam_eps = 1e-4;
  train::Optimization optimization(config, net, objective, 10, 1);
  for (auto& group : optimization.optimizer().param_groups()) {
    EXPECT_EQ(static_cast<torch::optim::AdamWOptions&>(group.options()).eps(), 1e-4);
  }
}

TEST_F(OptimizationTest, StepClampsGradientElementsAndClearsThem) {
  train::TrainConfig config = Config("none");
  config.optimizer = "sgd";
  config.momentum = 0;
  config.weight_decay = 0;
  config.lr = 1.0;
  config.batch_size = 180;
  config.fc_lr_scale = 1;
  config.clip_grad = 10;
  train::Optimization optimization(config, net, objective, 10, 1);
  const at::Tensor bias = net->last_linear->bias;
  const at::Tensor before = bias.detach().clone();
  bias.mutable_grad() = at::full_like(bias, 1e6);  // clamped to 10
  bias.mutable_grad()[0] = -3;                     // kept
  optimization.Step();
  const at::Tensor moved = before - bias.detach();
  EXPECT_FLOAT_EQ(moved[0].item<float>(), -3.0f);
  EXPECT_FLOAT_EQ(moved[1].item<float>(), 10.0f);
  EXPECT_TRUE(!bias.grad().defined() || bias.grad().abs().sum().item<float>() == 0.0f);
}

}  // namespace
}  // namespace hier::testing
