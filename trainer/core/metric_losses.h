// The base metric losses HIER is added to: Proxy-Anchor and Multi-Similarity on cosine similarity,
// and hyperbolic SupCon (../shared/design/hier-method.md, section 4).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace hier::core {

struct ProxyAnchorOptions {
  ProxyAnchorOptions(int64_t num_classes, int64_t dim) : num_classes_(num_classes), dim_(dim) {}
  TORCH_ARG(int64_t, num_classes);
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, alpha) = 32;
  TORCH_ARG(double, margin) = 0.1;
};

// Proxy-Anchor on the angle: with cos[i, p] between x_i and proxy p and P+ the classes in the
// batch, (1/|P+|) sum_{p in P+} log(1 + sum_{y_i = p} e^{-alpha (cos - m)})
//      + (1/C) sum_p log(1 + sum_{y_i != p} e^{alpha (cos + m)}).
at::Tensor ProxyAnchorLoss(const at::Tensor& x, const at::Tensor& labels, const at::Tensor& proxies,
                           double alpha = 32, double margin = 0.1);

// Proxy-Anchor with its own learnable class proxies (Kaiming-normal, fan-out).
class ProxyAnchorImpl : public torch::nn::Cloneable<ProxyAnchorImpl> {
 public:
  explicit ProxyAnchorImpl(const ProxyAnchorOptions& options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x, const at::Tensor& labels);

  ProxyAnchorOptions options;
  at::Tensor proxies;  // [C, D]
};
TORCH_MODULE(ProxyAnchor);

// Multi-Similarity on cosine similarity, no pair mining:
// mean_i [ (1/alpha) log(1 + sum_{j != i, same} e^{-alpha (S_ij - base)})
//        + (1/beta) log(1 + sum_{different} e^{beta (S_ij - base)}) ].
at::Tensor MultiSimilarityLoss(const at::Tensor& x, const at::Tensor& labels, double alpha = 2,
                               double beta = 50, double base = 0.5);

// Hyperbolic SupCon over groups of `images_per_class` consecutive rows of z [B, D] (one class
// each, as the sampler lays them out; labels are checked for that). For every ordered pair of
// views u != v, cross-entropy of row i over [-d(a_i, b_m)/tau]_m ++ [-d(a_i, a_m)/tau]_{m != i}
// with target m = i; the sum over pairs is divided by images_per_class^2, as the reference does.
at::Tensor SupConHyperbolicLoss(const at::Tensor& z, const at::Tensor& labels,
                                int64_t images_per_class, double c, double tau = 0.2);

}  // namespace hier::core
