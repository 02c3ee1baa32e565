#include "trainer/model/resnet.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <string>

#include "tests/core/error_message.h"
#include "tests/trainer/temp_dir_test.h"
#include "trainer/model/pretrained.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

int64_t CountParameters(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const at::Tensor& p : module.parameters()) count += p.numel();
  return count;
}

bool HasTensor(const torch::nn::Module& module, const std::string& name) {
  return module.named_parameters().contains(name) || module.named_buffers().contains(name);
}

TEST(ResNetTest, OutputShapesMatchFeatures) {
  torch::manual_seed(0);
  const at::Tensor images = torch::randn({2, 3, 64, 64});
  model::ResNet resnet18(model::ResNetOptions().depth(18));
  model::ResNet resnet50(model::ResNetOptions().depth(50));
  EXPECT_EQ(resnet18->features(), 512);
  EXPECT_EQ(resnet50->features(), 2048);
  EXPECT_EQ(resnet18->forward(images).sizes(), (at::IntArrayRef{2, 512}));
  EXPECT_EQ(resnet50->forward(images).sizes(), (at::IntArrayRef{2, 2048}));

  model::ResNet gray(model::ResNetOptions().depth(18).in_channels(1));
  EXPECT_EQ(gray->forward(torch::randn({2, 1, 64, 64})).sizes(), (at::IntArrayRef{2, 512}));
}

TEST(ResNetTest, ParameterCountsMatchTorchvisionWithoutFc) {
  EXPECT_EQ(CountParameters(*model::ResNet(model::ResNetOptions().depth(18))), 11'176'512);
  EXPECT_EQ(CountParameters(*model::ResNet(model::ResNetOptions().depth(50))), 23'508'032);
}

TEST(ResNetTest, NamesAndStridesFollowTorchvision) {
  model::ResNet resnet18(model::ResNetOptions().depth(18));
  EXPECT_TRUE(HasTensor(*resnet18, "layer4.1.bn2.running_var"));
  EXPECT_TRUE(HasTensor(*resnet18, "layer2.0.downsample.0.weight"));
  EXPECT_FALSE(HasTensor(*resnet18, "layer1.0.downsample.0.weight"));

  model::ResNet resnet50(model::ResNetOptions().depth(50));
  EXPECT_TRUE(HasTensor(*resnet50, "layer3.5.conv3.weight"));
  EXPECT_TRUE(HasTensor(*resnet50, "layer2.0.downsample.0.weight"));
  EXPECT_TRUE(HasTensor(*resnet50, "layer2.0.downsample.1.num_batches_tracked"));
  // ResNet-50's layer1 widens 64 -> 256, so it needs a projection even at stride 1.
  EXPECT_TRUE(HasTensor(*resnet50, "layer1.0.downsample.0.weight"));
  EXPECT_FALSE(HasTensor(*resnet50, "layer3.6.conv1.weight"));

  // torchvision v1.5 strides the Bottleneck's 3x3 conv, not its first 1x1.
  const auto modules = resnet50->named_modules();
  auto stride = [&](const std::string& name) {
    return modules[name]->as<torch::nn::Conv2d>()->options.stride()->at(0);
  };
  EXPECT_EQ(stride("layer2.0.conv1"), 1);
  EXPECT_EQ(stride("layer2.0.conv2"), 2);
  EXPECT_EQ(stride("layer2.0.downsample.0"), 2);
}

TEST(ResNetTest, UnsupportedDepthNamesIt) {
  EXPECT_THAT(ErrorMessage([] { model::ResNet(model::ResNetOptions().depth(34)); }),
              HasSubstr("34"));
}

TEST(ResNetTest, BnFreezeKeepsRunningStatistics) {
  torch::manual_seed(0);
  const at::Tensor images = torch::randn({2, 3, 32, 32});
  model::ResNet resnet(model::ResNetOptions().depth(18));
  resnet->set_bn_freeze(true);
  resnet->train(true);
  EXPECT_TRUE(resnet->is_training());
  int batch_norms = 0;
  for (const auto& module : resnet->modules(/*include_self=*/false)) {
    if (module->as<torch::nn::BatchNorm2d>() == nullptr) continue;
    ++batch_norms;
    EXPECT_FALSE(module->is_training());
  }
  EXPECT_EQ(batch_norms, 20);  // bn1, two per BasicBlock (16), three downsample BNs

  const at::Tensor before = resnet->bn1->running_mean.clone();
  resnet->forward(images);
  EXPECT_TRUE(torch::equal(resnet->bn1->running_mean, before));

  resnet->set_bn_freeze(false);
  resnet->forward(images);
  EXPECT_FALSE(torch::equal(resnet->bn1->running_mean, before));
}

// A TorchScript module with `source`'s tree and tensors (except `skip`), as torch.jit.script of
// the matching torchvision model would save them.
torch::jit::Module MirrorAsTorchScript(const torch::nn::Module& source,
                                       const std::string& skip = "",
                                       const std::string& prefix = "") {
  torch::jit::Module mirror("Mirror");
  for (const auto& item : source.named_parameters(/*recurse=*/false)) {
    if (prefix + item.key() != skip) mirror.register_parameter(item.key(), item.value(), false);
  }
  for (const auto& item : source.named_buffers(/*recurse=*/false)) {
    if (prefix + item.key() != skip) mirror.register_buffer(item.key(), item.value());
  }
  for (const auto& child : source.named_children()) {
    mirror.register_module(child.key(),
                           MirrorAsTorchScript(*child.value(), skip, prefix + child.key() + "."));
  }
  return mirror;
}

class PretrainedTest : public TempDirTest {
 protected:
  // Saves a seeded, once-trained ResNet-18's tensors, plus a torchvision-style classifier, as
  // TorchScript.
  std::string SaveResNet18(int64_t in_channels, const std::string& skip = "") {
    torch::manual_seed(1);
    source_ = model::ResNet(model::ResNetOptions().depth(18).in_channels(in_channels));
    {
      // Moves the running statistics off their defaults, so copying buffers is checked too.
      torch::NoGradGuard no_grad;
      source_->forward(torch::randn({2, in_channels, 32, 32}));
    }
    torch::jit::Module scripted = MirrorAsTorchScript(*source_, skip);
    torch::jit::Module fc("Classifier");
    fc.register_parameter("weight", torch::randn({1000, 512}), false);
    fc.register_parameter("bias", torch::randn({1000}), false);
    scripted.register_module("fc", fc);
    const std::string path = Path("resnet18.pt");
    scripted.save(path);
    return path;
  }

  model::ResNet source_{nullptr};
};

TEST_F(PretrainedTest, CopiesEveryTensorByName) {
  const std::string path = SaveResNet18(3);
  torch::manual_seed(2);
  model::ResNet target(model::ResNetOptions().depth(18));
  ASSERT_FALSE(torch::equal(target->conv1->weight, source_->conv1->weight));
  ASSERT_FALSE(torch::equal(target->bn1->running_mean, source_->bn1->running_mean));

  const int64_t expected =
      static_cast<int64_t>(target->parameters().size() + target->buffers().size());
  EXPECT_EQ(model::LoadPretrainedWeights(*target, path), expected);
  const auto source_tensors = source_->named_parameters();
  for (const auto& item : target->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), source_tensors[item.key()])) << item.key();
  }
  const auto source_buffers = source_->named_buffers();
  for (const auto& item : target->named_buffers()) {
    EXPECT_TRUE(torch::equal(item.value(), source_buffers[item.key()])) << item.key();
  }

  source_->eval();
  target->eval();
  const at::Tensor images = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::equal(target->forward(images), source_->forward(images)));
}

TEST_F(PretrainedTest, MissingTensorIsNamed) {
  const std::string path = SaveResNet18(3, "layer4.1.bn2.running_var");
  model::ResNet target(model::ResNetOptions().depth(18));
  EXPECT_THAT(ErrorMessage([&] { model::LoadPretrainedWeights(*target, path); }),
              ::testing::AllOf(HasSubstr("layer4.1.bn2.running_var"), HasSubstr(path)));
}

TEST_F(PretrainedTest, ShapeMismatchIsNamed) {
  const std::string path = SaveResNet18(1);
  model::ResNet target(model::ResNetOptions().depth(18));
  EXPECT_THAT(ErrorMessage([&] { model::LoadPretrainedWeights(*target, path); }),
              ::testing::AllOf(HasSubstr("conv1.weight"), HasSubstr(path)));
}

TEST_F(PretrainedTest, MissingFileIsNamed) {
  const std::string path = Path("no_such_model.pt");
  model::ResNet target(model::ResNetOptions().depth(18));
  EXPECT_THAT(ErrorMessage([&] { model::LoadPretrainedWeights(*target, path); }), HasSubstr(path));
}

}  // namespace
}  // namespace hier::testing
