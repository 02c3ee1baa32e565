#include "trainer/model/embedding_net.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>

#include <algorithm>

namespace hier::model {
namespace {

// Global average pool + global max pool, summed (the reference's ResNet feature), then flattened.
class GlobalPoolImpl : public torch::nn::Cloneable<GlobalPoolImpl> {
 public:
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return x.mean({2, 3}) + x.amax({2, 3}); }
};
TORCH_MODULE(GlobalPool);

void AddConvBlock(torch::nn::Sequential& body, int64_t in, int64_t out) {
  body->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
  body->push_back(torch::nn::BatchNorm2d(out));
  body->push_back(torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)));
}

// A small VGG-style network for 28x28 inputs: 28 -> 14 -> 7, then global pooling to 64 features.
torch::nn::Sequential SmallCnn(int64_t in_channels) {
  torch::nn::Sequential body;
  AddConvBlock(body, in_channels, 16);
  AddConvBlock(body, 16, 16);
  body->push_back(torch::nn::MaxPool2d(2));
  AddConvBlock(body, 16, 32);
  AddConvBlock(body, 32, 32);
  body->push_back(torch::nn::MaxPool2d(2));
  AddConvBlock(body, 32, 64);
  body->push_back(GlobalPool());
  return body;
}

constexpr int64_t kSmallCnnFeatures = 64;

}  // namespace

const std::vector<std::string>& KnownArchitectures() {
  static const std::vector<std::string> names = {"small-cnn"};
  return names;
}

EmbeddingNetImpl::EmbeddingNetImpl(const EmbeddingNetOptions& options) : options(options) {
  reset();
}

void EmbeddingNetImpl::reset() {
  const auto& known = KnownArchitectures();
  TORCH_CHECK(std::find(known.begin(), known.end(), options.architecture()) != known.end(),
              "model: unknown architecture '", options.architecture(), "'");
  TORCH_CHECK(options.emb() > 0, "model: emb must be > 0, got ", options.emb());
  body = register_module("body", SmallCnn(options.in_channels()));
  last_norm = register_module(
      "last_norm", torch::nn::LayerNorm(
                       torch::nn::LayerNormOptions({kSmallCnnFeatures}).elementwise_affine(false)));
  last_linear = register_module("last_linear", torch::nn::Linear(kSmallCnnFeatures, options.emb()));
  torch::nn::init::orthogonal_(last_linear->weight);
  torch::nn::init::zeros_(last_linear->bias);
  to_poincare = register_module(
      "to_poincare",
      core::ToPoincareLayer(core::ToPoincareOptions(options.c()).clip_r(options.clip_r())));
}

at::Tensor EmbeddingNetImpl::forward(const at::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == options.in_channels(),
              "model: images must be [B, ", options.in_channels(), ", H, W], got ", images.sizes());
  return to_poincare(last_linear(last_norm(body->forward(images))));
}

}  // namespace hier::model
