#include "trainer/model/embedding_net.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>

#include <algorithm>

#include "trainer/model/resnet.h"
#include "trainer/model/scripted_backbone.h"
#include "trainer/model/small_cnn.h"

namespace hier::model {
namespace {

template <typename Impl>
Backbone AsBackbone(const torch::nn::ModuleHolder<Impl>& holder) {
  return Backbone(std::shared_ptr<BackboneImpl>(holder.ptr()));
}

Backbone MakeBackbone(const EmbeddingNetOptions& o) {
  const std::string& name = o.architecture();
  if (name == "small-cnn") return AsBackbone(SmallCnn(o.in_channels()));
  if (name == "resnet18" || name == "resnet50") {
    const int64_t depth = name == "resnet18" ? 18 : 50;
    return AsBackbone(ResNet(ResNetOptions().depth(depth).in_channels(o.in_channels())));
  }
  TORCH_CHECK(!o.backbone_file().empty(),
              "model: architecture torchscript needs a backbone file (--backbone-file)");
  return AsBackbone(ScriptedBackbone(o.backbone_file(), o.in_channels(), o.input_size()));
}

}  // namespace

const std::vector<std::string>& KnownArchitectures() {
  static const std::vector<std::string> names = {"small-cnn", "resnet18", "resnet50",
                                                 "torchscript"};
  return names;
}

EmbeddingNetImpl::EmbeddingNetImpl(const EmbeddingNetOptions& options) : options(options) {
  const auto& known = KnownArchitectures();
  TORCH_CHECK(std::find(known.begin(), known.end(), options.architecture()) != known.end(),
              "model: unknown architecture '", options.architecture(), "'");
  TORCH_CHECK(options.emb() > 0, "model: emb must be > 0, got ", options.emb());
  body = register_module("body", MakeBackbone(options));
  const int64_t features = body->features();
  last_norm = register_module(
      "last_norm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({features}).elementwise_affine(false)));
  last_linear = register_module("last_linear", torch::nn::Linear(features, options.emb()));
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
