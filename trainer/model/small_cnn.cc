#include "trainer/model/small_cnn.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>

namespace hier::model {
namespace {

void AddConvBlock(torch::nn::Sequential& layers, int64_t in, int64_t out) {
  layers->push_back(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
  layers->push_back(torch::nn::BatchNorm2d(out));
  layers->push_back(torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)));
}

}  // namespace

SmallCnnImpl::SmallCnnImpl(int64_t in_channels) {
  torch::nn::Sequential layers;
  AddConvBlock(layers, in_channels, 16);
  AddConvBlock(layers, 16, 16);
  layers->push_back(torch::nn::MaxPool2d(2));
  AddConvBlock(layers, 16, 32);
  AddConvBlock(layers, 32, 32);
  layers->push_back(torch::nn::MaxPool2d(2));
  AddConvBlock(layers, 32, 64);
  layers_ = register_module("layers", layers);
}

at::Tensor SmallCnnImpl::forward(const at::Tensor& images) {
  return GlobalAvgPlusMaxPool(layers_->forward(images));
}

}  // namespace hier::model
