// The embedding network: a backbone ("body"), the reference's head (LayerNorm without affine,
// then a Linear layer to the embedding size) and ToPoincare, so outputs are points on the ball.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/core/to_poincare.h"
#include "trainer/model/backbone.h"

namespace hier::model {

// Everything needed to rebuild the network for inference (a checkpoint's manifest stores it).
struct EmbeddingNetOptions {
  TORCH_ARG(std::string, architecture) = "small-cnn";
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, input_size) = 28;  // square inputs; a scripted backbone is probed with it
  TORCH_ARG(std::string, backbone_file);  // the TorchScript file of architecture "torchscript"
  TORCH_ARG(int64_t, emb) = 128;
  TORCH_ARG(double, c) = 0.1;
  TORCH_ARG(double, clip_r) = 2.3;
};

// Architectures EmbeddingNet can build: small-cnn, resnet18, resnet50, torchscript.
const std::vector<std::string>& KnownArchitectures();

class EmbeddingNetImpl : public torch::nn::Module {
 public:
  // Throws c10::Error naming the architecture when it is not one of KnownArchitectures().
  explicit EmbeddingNetImpl(const EmbeddingNetOptions& options);

  // Images [B, C, H, W] -> points on the ball [B, emb].
  at::Tensor forward(const at::Tensor& images);

  EmbeddingNetOptions options;
  Backbone body{nullptr};  // images -> features [B, F]; the "backbone" lr group
  torch::nn::LayerNorm last_norm{nullptr};
  torch::nn::Linear last_linear{nullptr};  // "last_*": the head lr group
  core::ToPoincareLayer to_poincare{nullptr};
};
TORCH_MODULE(EmbeddingNet);

}  // namespace hier::model
