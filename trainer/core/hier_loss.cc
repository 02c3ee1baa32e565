#include "trainer/core/hier_loss.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/generated/variable_factories.h>

#include <cmath>

#include "trainer/core/checks.h"
#include "trainer/core/fast_math.h"
#include "trainer/core/hier_triplet_kernel.h"
#include "trainer/core/poincare.h"
#include "trainer/core/to_poincare.h"
#include "trainer/core/triplet_mining.h"

namespace hier::core {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Independent random streams derived from one seed.
enum class Stream : uint64_t { kSampleMining = 1, kProxyMining, kSampleNoise, kProxyNoise };

uint64_t StreamKey(uint64_t seed, Stream stream) {
  return Mix64(Mix64(seed) ^ static_cast<uint64_t>(stream));
}

void CheckTriplets(const char* name, const at::Tensor& triplets, int64_t num_nodes) {
  TORCH_CHECK(triplets.defined() && triplets.dim() == 2 && triplets.size(0) == 3,
              "hier_loss: ", name, " must be an int64 [3, T] tensor, got shape ",
              triplets.defined() ? triplets.sizes() : at::IntArrayRef{});
  TORCH_CHECK(triplets.scalar_type() == at::kLong, "hier_loss: ", name, " must hold int64, got ",
              triplets.scalar_type());
  if (triplets.numel() == 0) return;
  const int64_t lo = triplets.min().item<int64_t>();
  const int64_t hi = triplets.max().item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < num_nodes, "hier_loss: ", name, " indices must be in [0, ", num_nodes,
              "), got [", lo, ", ", hi, "]");
}

// Autograd wrapper of the fused kernel. The gradient is computed in the forward pass (it costs one
// more sweep over rows already in cache) and scaled by the incoming gradient in backward.
class HierTripletFunction : public torch::autograd::Function<HierTripletFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& dist,
                               const at::Tensor& triplets, double tau, double margin,
                               bool gumbel_noise, int64_t noise_key) {
    const int64_t num_rows = dist.size(0), num_proxies = dist.size(1);
    const int64_t stride = HierKernelRowStride(num_proxies);
    // Rows padded to whole SIMD chunks (the padding never wins a max nor gets weight), on the CPU
    // where the kernel runs; the loss goes back to the rows' device.
    at::Tensor rows = at::full({num_rows, stride}, kHierKernelPad, dist.options().device(at::kCPU));
    rows.narrow(1, 0, num_proxies).copy_(dist.detach());
    const at::Tensor trip = triplets.contiguous();
    const int64_t count = trip.size(1);
    at::Tensor losses = at::zeros({count}, at::kDouble);
    at::Tensor lca_ij = at::zeros({count}, at::kLong);
    at::Tensor lca_ijk = at::zeros({count}, at::kLong);
    at::Tensor active = at::zeros({count}, at::kBool);
    const bool want_grad = dist.requires_grad();
    const int64_t threads = at::get_num_threads();
    at::Tensor grads =
        want_grad ? at::zeros({threads, num_rows, stride}, rows.options()) : at::Tensor();

    HierTripletKernelParams params;
    params.num_rows = num_rows;
    params.num_proxies = num_proxies;
    params.row_stride = stride;
    params.tau = tau;
    params.margin = margin;
    params.gumbel_noise = gumbel_noise;
    params.noise_key = static_cast<uint64_t>(noise_key);
    params.grad_scale = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
    const HierTripletOutputs out{losses.data_ptr<double>(), lca_ij.data_ptr<int64_t>(),
                                 lca_ijk.data_ptr<int64_t>(), active.data_ptr<bool>()};
    const int64_t* anchors = trip.data_ptr<int64_t>();
    AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "hier_triplet_kernel", [&] {
      const scalar_t* d = rows.data_ptr<scalar_t>();
      scalar_t* g = want_grad ? grads.data_ptr<scalar_t>() : nullptr;
      const int64_t slice = num_rows * stride;
      at::parallel_for(0, count, 64, [&](int64_t begin, int64_t end) {
        scalar_t* mine = g ? g + at::get_thread_num() * slice : nullptr;
        HierTripletKernel(d, anchors, anchors + count, anchors + 2 * count, begin, end, params, out,
                          mine);
      });
    });
    // Summed in order, so the value does not depend on how triplets were split across threads.
    const double mean = count > 0 ? losses.sum().item<double>() / count : 0.0;
    if (want_grad) ctx->save_for_backward({grads.sum(0).narrow(1, 0, num_proxies)});
    ctx->mark_non_differentiable({lca_ij, lca_ijk, active});
    return {at::scalar_tensor(mean, dist.options()), lca_ij, lca_ijk, active};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor grad_dist = ctx->get_saved_variables()[0];
    return {grad_dist.to(grads[0].device()) * grads[0],
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

HierPart HierTripletLoss(const at::Tensor& dist, const at::Tensor& triplets, double tau,
                         double margin, std::optional<uint64_t> noise_key) {
  CheckMatrix("hier_loss", "dist", dist);
  CheckTriplets("triplets", triplets, dist.size(0));
  TORCH_CHECK(tau > 0, "hier_loss: tau must be > 0, got ", tau);
  TORCH_CHECK(std::isfinite(margin), "hier_loss: margin must be finite, got ", margin);
  const variable_list out =
      HierTripletFunction::apply(dist, triplets, tau, margin, noise_key.has_value(),
                                 static_cast<int64_t>(noise_key.value_or(0)));
  return HierPart{out[0], out[1], out[2], out[3]};
}

HierLossImpl::HierLossImpl(const HierLossOptions& options) : options(options) { reset(); }

void HierLossImpl::reset() {
  TORCH_CHECK(options.dim() > 0, "hier_loss: dim must be > 0, got ", options.dim());
  TORCH_CHECK(options.num_proxies() >= 2, "hier_loss: num_proxies must be >= 2, got ",
              options.num_proxies());
  CheckCurvature("hier_loss", options.c());
  TORCH_CHECK(options.tau() > 0, "hier_loss: tau must be > 0, got ", options.tau());
  TORCH_CHECK(options.topk() >= 2, "hier_loss: topk must be >= 2, got ", options.topk());
  TORCH_CHECK(options.topk() <= options.num_proxies(), "hier_loss: topk (", options.topk(),
              ") exceeds num_proxies (", options.num_proxies(), ")");
  TORCH_CHECK(options.triplets_per_anchor() >= 1,
              "hier_loss: triplets_per_anchor must be >= 1, got ", options.triplets_per_anchor());
  // N(0, 1) / sqrt(D) * clip_r * 0.9: Euclidean norm about 0.9 clip_r (2.3 when unclipped).
  const double radius = options.clip_r().value_or(2.3);
  proxies = register_parameter("proxies",
                               torch::randn({options.num_proxies(), options.dim()}) *
                                   (radius * 0.9 / std::sqrt(static_cast<double>(options.dim()))));
}

at::Tensor HierLossImpl::MappedProxies() const {
  ToPoincareOptions map(options.c());
  map.clip_r(options.clip_r()).riemannian(true);
  return ToPoincare(proxies, map);
}

ProxyRadii HierLossImpl::Radii() const {
  at::NoGradGuard no_grad;
  ProxyRadii radii;
  radii.count = proxies.size(0);
  if (options.clip_r()) {
    radii.on_clip_sphere = (proxies.detach().norm(2, 1) >= *options.clip_r()).sum().item<int64_t>();
  }
  const at::Tensor depth = DistanceToOrigin(MappedProxies(), options.c()).to(at::kCPU, at::kDouble);
  for (double q : kProxyDepthQuantiles) {
    radii.depth_quantiles.push_back(at::quantile(depth, q).item<double>());
  }
  return radii;
}

HierStepStats SummariseStep(const HierLossResult& result) {
  HierStepStats stats;
  auto share = [](const at::Tensor& active) {
    return active.numel() > 0 ? active.to(at::kDouble).mean().item<double>() : 0.0;
  };
  stats.active_sample_proxy = share(result.sample_proxy.active);
  stats.active_proxy_proxy = share(result.proxy_proxy.active);
  std::vector<at::Tensor> chosen;
  for (const HierPart* part : {&result.sample_proxy, &result.proxy_proxy}) {
    if (part->active.numel() == 0) continue;
    chosen.push_back(part->lca_ij.index({part->active}));
    chosen.push_back(part->lca_ijk.index({part->active}));
  }
  if (!chosen.empty()) stats.lca_proxies = std::get<0>(at::_unique(at::cat(chosen))).numel();
  return stats;
}

namespace {

// The distances the loss reads: the proxies' distances to samples are never used, so they are
// not computed.
struct Nodes {
  at::Tensor sample_rows;  // [B, B + P]: samples to samples, then samples to proxies
  at::Tensor proxy_rows;   // [P, P]: proxies to proxies
  int64_t batch;

  at::Tensor SampleToSample() const { return sample_rows.slice(1, 0, batch); }
  at::Tensor SampleToProxy() const { return sample_rows.slice(1, batch); }
};

Nodes AllDistances(const at::Tensor& z, const at::Tensor& mapped, const HierLossOptions& o) {
  CheckMatrix("hier_loss", "z", z);
  TORCH_CHECK(z.size(1) == o.dim(), "hier_loss: z has dimension ", z.size(1),
              " but the loss was built for ", o.dim());
  TORCH_CHECK(z.size(0) >= 2, "hier_loss: the batch needs at least 2 samples, got ", z.size(0));
  CheckMatrix("hier_loss", "mapped_proxies", mapped);
  TORCH_CHECK(mapped.size(0) == o.num_proxies(), "hier_loss: expected ", o.num_proxies(),
              " proxies, got ", mapped.size(0));
  const at::Tensor proxies = mapped.to(z.scalar_type());
  return Nodes{DistMatrix(z, at::cat({z, proxies}, 0), o.c()), DistMatrix(proxies, proxies, o.c()),
               z.size(0)};
}

HierTriplets Mine(const Nodes& nodes, const at::Tensor& labels, const HierLossOptions& o,
                  uint64_t seed) {
  const int64_t b = nodes.batch;
  TORCH_CHECK(o.topk() <= b, "hier_loss: topk (", o.topk(), ") exceeds the batch size (", b, ")");
  CheckLabels("hier_loss", "labels", labels, b);
  const at::Tensor sample_sim = SampleSimilarity(nodes.SampleToSample().detach(), labels);
  const at::Tensor proxy_sim = ProxySimilarity(nodes.proxy_rows.detach());
  return HierTriplets{
      SampleTriplets(FindReciprocalNeighbours(sample_sim, o.topk()), o.triplets_per_anchor(),
                     StreamKey(seed, Stream::kSampleMining)),
      SampleTriplets(FindReciprocalNeighbours(proxy_sim, o.topk()), o.triplets_per_anchor(),
                     StreamKey(seed, Stream::kProxyMining))};
}

HierLossResult Evaluate(const Nodes& nodes, const HierTriplets& triplets, const HierLossOptions& o,
                        uint64_t seed) {
  auto noise = [&](Stream s) {
    return o.gumbel_noise() ? std::optional<uint64_t>(StreamKey(seed, s)) : std::nullopt;
  };
  HierLossResult result;
  result.sample_proxy = HierTripletLoss(nodes.SampleToProxy(), triplets.sample_proxy, o.tau(),
                                        o.margin(), noise(Stream::kSampleNoise));
  result.proxy_proxy = HierTripletLoss(nodes.proxy_rows, triplets.proxy_proxy, o.tau(), o.margin(),
                                       noise(Stream::kProxyNoise));
  result.loss = result.sample_proxy.loss + result.proxy_proxy.loss;
  return result;
}

}  // namespace

HierLossResult HierLossOnBall(const at::Tensor& z, const at::Tensor& mapped_proxies,
                              const HierTriplets& triplets, const HierLossOptions& options,
                              uint64_t seed) {
  const Nodes nodes = AllDistances(z, mapped_proxies, options);
  CheckTriplets("triplets.sample_proxy", triplets.sample_proxy, nodes.batch);
  CheckTriplets("triplets.proxy_proxy", triplets.proxy_proxy, options.num_proxies());
  return Evaluate(nodes, triplets, options, seed);
}

HierTriplets HierLossImpl::MineTriplets(const at::Tensor& z, const at::Tensor& labels,
                                        uint64_t seed) const {
  at::NoGradGuard no_grad;
  return Mine(AllDistances(z, MappedProxies(), options), labels, options, seed);
}

HierLossResult HierLossImpl::forward(const at::Tensor& z, const at::Tensor& labels, uint64_t seed) {
  const Nodes nodes = AllDistances(z, MappedProxies(), options);
  return Evaluate(nodes, Mine(nodes, labels, options, seed), options, seed);
}

HierLossResult HierLossImpl::ForwardWithTriplets(const at::Tensor& z, const HierTriplets& triplets,
                                                 uint64_t seed) {
  return HierLossOnBall(z, MappedProxies(), triplets, options, seed);
}

}  // namespace hier::core
