#include "trainer/model/resnet.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>
#include <torch/nn/module.h>

#include <array>

namespace hier::model {
namespace {

// torchvision's convs: bias-free, "same" padding for odd kernels.
torch::nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

// torchvision's BasicBlock (ResNet-18, two 3x3 convs) or Bottleneck (ResNet-50, 1x1 -> 3x3 ->
// 1x1 with 4x expansion), registered in torchvision's order so parameter names and order match.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck) {
    const int64_t out = bottleneck ? planes * 4 : planes;
    if (bottleneck) {
      conv1 = register_module("conv1", Conv(in, planes, 1));
      bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
      conv2 = register_module("conv2", Conv(planes, planes, 3, stride));
      bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
      conv3 = register_module("conv3", Conv(planes, out, 1));
      bn3 = register_module("bn3", torch::nn::BatchNorm2d(out));
    } else {
      conv1 = register_module("conv1", Conv(in, planes, 3, stride));
      bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
      conv2 = register_module("conv2", Conv(planes, planes, 3));
      bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
    }
    if (stride != 1 || in != out) {
      downsample = register_module(
          "downsample",
          torch::nn::Sequential(Conv(in, out, 1, stride), torch::nn::BatchNorm2d(out)));
    }
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = bn2(conv2(torch::relu(bn1(conv1(x)))));
    if (conv3) y = bn3(conv3(torch::relu(y)));
    y += downsample ? downsample->forward(x) : x;
    return torch::relu_(y);
  }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(ResidualBlock);

// One stage of `blocks` residual blocks; only the first changes stride and width. Advances
// `in` to the stage's output width.
torch::nn::Sequential Layer(int64_t& in, int64_t planes, int64_t blocks, int64_t stride,
                            bool bottleneck) {
  torch::nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    layer->push_back(ResidualBlock(in, planes, i == 0 ? stride : 1, bottleneck));
    in = bottleneck ? planes * 4 : planes;
  }
  return layer;
}

}  // namespace

ResNetImpl::ResNetImpl(const ResNetOptions& options) : options(options) {
  TORCH_CHECK(options.depth() == 18 || options.depth() == 50,
              "model: ResNet depth must be 18 or 50, got ", options.depth());
  const bool bottleneck = options.depth() == 50;
  using BlockCounts = std::array<int64_t, 4>;
  const BlockCounts blocks = bottleneck ? BlockCounts{3, 4, 6, 3} : BlockCounts{2, 2, 2, 2};
  int64_t in = 64;
  conv1 = register_module("conv1", Conv(options.in_channels(), 64, 7, 2));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(64));
  relu = register_module("relu", torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)));
  maxpool = register_module(
      "maxpool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
  layer1 = register_module("layer1", Layer(in, 64, blocks[0], 1, bottleneck));
  layer2 = register_module("layer2", Layer(in, 128, blocks[1], 2, bottleneck));
  layer3 = register_module("layer3", Layer(in, 256, blocks[2], 2, bottleneck));
  layer4 = register_module("layer4", Layer(in, 512, blocks[3], 2, bottleneck));
  // BatchNorm already starts at weight 1, bias 0, as torchvision sets it.
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, /*a=*/0, torch::kFanOut, torch::kReLU);
    }
  }
}

at::Tensor ResNetImpl::forward(const at::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == options.in_channels(),
              "model: images must be [B, ", options.in_channels(), ", H, W], got ", images.sizes());
  at::Tensor maps = maxpool(relu(bn1(conv1(images))));
  maps = layer4->forward(layer3->forward(layer2->forward(layer1->forward(maps))));
  return GlobalAvgPlusMaxPool(maps);
}

int64_t ResNetImpl::features() const { return options.depth() == 50 ? 2048 : 512; }

}  // namespace hier::model
