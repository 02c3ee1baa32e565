#include "trainer/model/backbone.h"

#include <torch/nn/modules/batchnorm.h>

namespace hier::model {

void BackboneImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (bn_freeze_) FreezeBatchNorm();
}

void BackboneImpl::set_bn_freeze(bool on) {
  bn_freeze_ = on;
  train(is_training());
}

void BackboneImpl::FreezeBatchNorm() {
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* bn = module->as<torch::nn::BatchNorm2d>()) bn->eval();
  }
}

at::Tensor GlobalAvgPlusMaxPool(const at::Tensor& maps) {
  return maps.mean({2, 3}) + maps.amax({2, 3});
}

}  // namespace hier::model
