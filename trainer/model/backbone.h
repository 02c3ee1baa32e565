// The feature extractor inside an EmbeddingNet: images [B, C, H, W] -> features [B, F]. Its
// parameters form the "backbone" learning-rate group; `bn_freeze` keeps its BatchNorm layers in
// eval mode for the whole run (running statistics frozen, affine parameters still trained).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace hier::model {

class BackboneImpl : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& images) = 0;

  // F, the width of forward()'s output.
  virtual int64_t features() const = 0;

  // Applies `on` to every submodule, then puts BatchNorm layers back in eval mode under bn_freeze.
  void train(bool on = true) override;
  void set_bn_freeze(bool on);
  bool bn_freeze() const { return bn_freeze_; }

 protected:
  // Puts this backbone's BatchNorm layers in eval mode; the default handles torch::nn ones.
  virtual void FreezeBatchNorm();

 private:
  bool bn_freeze_ = false;
};
TORCH_MODULE(Backbone);

// Global average pool + global max pool, summed (the reference's ResNet feature): [B, C, H, W] ->
// [B, C].
at::Tensor GlobalAvgPlusMaxPool(const at::Tensor& maps);

}  // namespace hier::model
