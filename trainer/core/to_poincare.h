// ToPoincare: maps Euclidean features onto the Poincaré ball (clip to clip_r, expmap0, project),
// with the reference's Riemannian gradient rescale in the backward pass.
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <optional>

namespace hier::core {

struct ToPoincareOptions {
  ToPoincareOptions(double c) : c_(c) {}  // NOLINT(runtime/explicit): options read as "c"
  TORCH_ARG(double, c);
  // Features longer than clip_r are scaled to clip_r before the exponential map (none: no clip).
  TORCH_ARG(std::optional<double>, clip_r) = 2.3;
  // Multiply the gradient arriving at the ball point by (1 - c|y|^2)^2 / 4.
  TORCH_ARG(bool, riemannian) = true;
};

// The mapping as a function; x has shape [..., D].
at::Tensor ToPoincare(const at::Tensor& x, const ToPoincareOptions& options);

// Multiplies the gradient by (1 - c|y|^2)^2 / 4 (exact c); the identity in the forward pass.
at::Tensor RiemannianGradientRescale(const at::Tensor& y, double c);

class ToPoincareLayerImpl : public torch::nn::Cloneable<ToPoincareLayerImpl> {
 public:
  explicit ToPoincareLayerImpl(const ToPoincareOptions& options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);

  ToPoincareOptions options;
};
TORCH_MODULE(ToPoincareLayer);

}  // namespace hier::core
