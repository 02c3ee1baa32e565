// A small VGG-style backbone for 28x28 inputs (the Fashion-MNIST default): 28 -> 14 -> 7, then
// global average + max pooling to 64 features.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>

#include "trainer/model/backbone.h"

namespace hier::model {

class SmallCnnImpl : public BackboneImpl {
 public:
  explicit SmallCnnImpl(int64_t in_channels);
  at::Tensor forward(const at::Tensor& images) override;
  int64_t features() const override { return 64; }

 private:
  torch::nn::Sequential layers_{nullptr};
};
TORCH_MODULE(SmallCnn);

}  // namespace hier::model
