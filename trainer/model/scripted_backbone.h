// A backbone loaded from a TorchScript file — for example a pretrained ResNet-50 or DINO ViT-S/16
// exported from Python. Its parameters and buffers are registered as this module's, under their
// own names and sharing their storage, so optimisers, checkpoints and device moves act on the
// scripted module itself.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

#include "trainer/model/backbone.h"

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace hier::model {

class ScriptedBackboneImpl : public BackboneImpl {
 public:
  // Loads `path` (on CPU) and probes its output with a zero batch [2, in_channels, input_size,
  // input_size]: it must give features [B, F], or maps [B, F, h, w] that are pooled like
  // ResNet's. Parameters keep the requires_grad they were saved with (export with the ViT patch
  // embedding frozen to freeze it here). Throws c10::Error naming the file.
  ScriptedBackboneImpl(const std::string& path, int64_t in_channels, int64_t input_size);
  ~ScriptedBackboneImpl() override;

  at::Tensor forward(const at::Tensor& images) override;
  int64_t features() const override { return features_; }
  void train(bool on = true) override;

 protected:
  void FreezeBatchNorm() override;

 private:
  std::unique_ptr<torch::jit::Module> script_;
  int64_t features_ = 0;
};
TORCH_MODULE(ScriptedBackbone);

}  // namespace hier::model
