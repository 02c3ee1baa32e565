// torchvision-compatible ResNet-18/50 backbones whose parameter names match torchvision's, so
// pretrained ImageNet weights can be copied in by name (see pretrained.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "trainer/model/backbone.h"

namespace hier::model {

struct ResNetOptions {
  TORCH_ARG(int64_t, depth) = 50;  // 18 (BasicBlock) or 50 (Bottleneck)
  TORCH_ARG(int64_t, in_channels) = 3;
};

// torchvision's ResNet (v1.5: a Bottleneck's stride sits on its 3x3 conv) without avgpool/fc;
// the feature is GlobalAvgPlusMaxPool of layer4's maps.
class ResNetImpl : public BackboneImpl {
 public:
  // Throws c10::Error naming the depth when it is not 18 or 50.
  explicit ResNetImpl(const ResNetOptions& options);

  // Images [B, in_channels, H, W] -> features [B, features()].
  at::Tensor forward(const at::Tensor& images) override;

  // 512 for ResNet-18, 2048 for ResNet-50.
  int64_t features() const override;

  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::ReLU relu{nullptr};
  torch::nn::MaxPool2d maxpool{nullptr};
  torch::nn::Sequential layer1{nullptr};
  torch::nn::Sequential layer2{nullptr};
  torch::nn::Sequential layer3{nullptr};
  torch::nn::Sequential layer4{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace hier::model
