// The HIER regulariser: learnable hierarchical proxies in the Poincaré ball, reciprocal top-k
// triplet mining, LCA selection by straight-through hard Gumbel-softmax and the three hinge terms,
// over sample-to-proxy and proxy-to-proxy triplets (../shared/design/hier-method.md, section 3).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace hier::core {

struct HierLossOptions {
  explicit HierLossOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);                // embedding dimension D
  TORCH_ARG(int64_t, num_proxies) = 512;  // P
  TORCH_ARG(double, c) = 0.1;             // curvature
  TORCH_ARG(std::optional<double>, clip_r) = 2.3;
  TORCH_ARG(double, margin) = 0.1;
  TORCH_ARG(double, tau) = 0.1;   // LCA softmax temperature
  TORCH_ARG(int64_t, topk) = 20;  // reciprocal neighbourhood size (samples and proxies)
  TORCH_ARG(int64_t, triplets_per_anchor) = 50;
  // Gumbel noise in the LCA choice (training). Off: deterministic argmax, as the reference files.
  TORCH_ARG(bool, gumbel_noise) = true;
};

// One part of the loss (sample-to-proxy or proxy-to-proxy) and what decided it, per triplet.
struct HierPart {
  at::Tensor loss;     // scalar: mean over all triplets, inactive ones included; 0 if none
  at::Tensor lca_ij;   // [T] int64
  at::Tensor lca_ijk;  // [T] int64
  at::Tensor active;   // [T] bool: lca_ij != lca_ijk
};

struct HierLossResult {
  at::Tensor loss;  // sample_proxy.loss + proxy_proxy.loss
  HierPart sample_proxy;
  HierPart proxy_proxy;
};

// Triplets as int64 [3, T] (anchor, positive, negative): indices into the batch for
// sample_proxy, into the proxies for proxy_proxy.
struct HierTriplets {
  at::Tensor sample_proxy;
  at::Tensor proxy_proxy;
};

// The fused triplet part on distance rows `dist` [N, P] (row r: distances from node r to the P
// proxies). `noise_key` set: Gumbel noise from that stream; unset: deterministic argmax.
HierPart HierTripletLoss(const at::Tensor& dist, const at::Tensor& triplets, double tau,
                         double margin, std::optional<uint64_t> noise_key);

// The loss of ball points z [B, D] against mapped proxies [P, D] on given triplets; the module's
// evaluation, open for callers that need the gradient at the mapped proxies themselves.
HierLossResult HierLossOnBall(const at::Tensor& z, const at::Tensor& mapped_proxies,
                              const HierTriplets& triplets, const HierLossOptions& options,
                              uint64_t seed);

// What one step of the loss did: the share of active triplets (lca_ij != lca_ijk) in each part,
// and how many distinct proxies served as an LCA of an active triplet (either selection).
struct HierStepStats {
  double active_sample_proxy = 0;
  double active_proxy_proxy = 0;
  int64_t lca_proxies = 0;
};
HierStepStats SummariseStep(const HierLossResult& result);

// Where the proxies sit. A Euclidean parameter at or beyond the clip radius maps onto the clip
// sphere, where the radial gradient vanishes: when most are there, the tree cannot form in depth.
struct ProxyRadii {
  int64_t count = 0;
  int64_t on_clip_sphere = 0;           // parameters with norm >= clip_r (0 without a clip)
  std::vector<double> depth_quantiles;  // distance from the origin at kProxyDepthQuantiles
};
inline constexpr double kProxyDepthQuantiles[] = {0.0, 0.1, 0.5, 0.9, 1.0};

class HierLossImpl : public torch::nn::Cloneable<HierLossImpl> {
 public:
  explicit HierLossImpl(const HierLossOptions& options);
  void reset() override;

  // Mines triplets from the batch and the proxies, then evaluates the loss. Every random draw
  // (mining and noise) comes from `seed`: the same inputs and seed give the same loss, bit for bit.
  HierLossResult forward(const at::Tensor& z, const at::Tensor& labels, uint64_t seed);

  // Evaluates the loss on given triplets; the noise (if enabled) comes from `seed`.
  HierLossResult ForwardWithTriplets(const at::Tensor& z, const HierTriplets& triplets,
                                     uint64_t seed);

  // The proxies mapped onto the ball, [P, D].
  at::Tensor MappedProxies() const;
  ProxyRadii Radii() const;
  // The mined triplets of a batch, for inspection.
  HierTriplets MineTriplets(const at::Tensor& z, const at::Tensor& labels, uint64_t seed) const;

  HierLossOptions options;
  at::Tensor proxies;  // Euclidean parameters [P, D], mapped by ToPoincare at every use
};
TORCH_MODULE(HierLoss);

}  // namespace hier::core
