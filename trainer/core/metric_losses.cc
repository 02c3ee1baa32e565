#include "trainer/core/metric_losses.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/nn/init.h>

#include "trainer/core/checks.h"
#include "trainer/core/poincare.h"

namespace hier::core {
namespace {

at::Tensor Normalize(const at::Tensor& x) {
  return x / at::linalg_vector_norm(x, 2, {-1}, true).clamp_min(1e-12);
}

// log(1 + sum over the masked entries of exp(logits)), per row (dim 1) or column (dim 0).
at::Tensor LogOnePlusMaskedSumExp(const at::Tensor& logits, const at::Tensor& mask, int64_t dim) {
  return at::log1p(at::where(mask, at::exp(logits), at::zeros_like(logits)).sum(dim));
}

void CheckBatch(const char* fn, const at::Tensor& x, const at::Tensor& labels) {
  CheckMatrix(fn, "x", x);
  CheckLabels(fn, "labels", labels, x.size(0));
  TORCH_CHECK(x.size(0) >= 1, fn, ": the batch is empty");
}

}  // namespace

at::Tensor ProxyAnchorLoss(const at::Tensor& x, const at::Tensor& labels, const at::Tensor& proxies,
                           double alpha, double margin) {
  CheckBatch("proxy_anchor", x, labels);
  CheckMatrix("proxy_anchor", "proxies", proxies);
  CheckSameWidth("proxy_anchor", "x", x, "proxies", proxies);
  const int64_t num_classes = proxies.size(0);
  const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < num_classes, "proxy_anchor: labels must be in [0, ", num_classes,
              ") (the number of classes), got [", lo, ", ", hi, "]");
  const at::Tensor cos = at::mm(Normalize(x), Normalize(proxies).t());  // [B, C]
  const at::Tensor is_class = labels.to(at::kLong).unsqueeze(1) ==
                              at::arange(num_classes, labels.options().dtype(at::kLong));
  const at::Tensor pos = LogOnePlusMaskedSumExp(-alpha * (cos - margin), is_class, 0);
  const at::Tensor neg = LogOnePlusMaskedSumExp(alpha * (cos + margin), ~is_class, 0);
  // Classes absent from the batch have an empty positive sum, log1p(0) = 0: summing over all
  // classes and dividing by the present ones is the mean over P+.
  return pos.sum() / is_class.any(0).sum() + neg.sum() / num_classes;
}

ProxyAnchorImpl::ProxyAnchorImpl(const ProxyAnchorOptions& options) : options(options) { reset(); }

void ProxyAnchorImpl::reset() {
  TORCH_CHECK(options.num_classes() >= 1, "proxy_anchor: num_classes must be >= 1, got ",
              options.num_classes());
  TORCH_CHECK(options.dim() >= 1, "proxy_anchor: dim must be >= 1, got ", options.dim());
  proxies = register_parameter("proxies", torch::empty({options.num_classes(), options.dim()}));
  torch::nn::init::kaiming_normal_(proxies, 0, torch::kFanOut);
}

at::Tensor ProxyAnchorImpl::forward(const at::Tensor& x, const at::Tensor& labels) {
  return ProxyAnchorLoss(x, labels, proxies.to(x.scalar_type()), options.alpha(), options.margin());
}

at::Tensor MultiSimilarityLoss(const at::Tensor& x, const at::Tensor& labels, double alpha,
                               double beta, double base) {
  CheckBatch("multi_similarity", x, labels);
  const at::Tensor unit = Normalize(x);
  const at::Tensor sim = at::mm(unit, unit.t());
  const at::Tensor same = labels.unsqueeze(0) == labels.unsqueeze(1);
  const at::Tensor self = at::eye(x.size(0), same.options());
  const at::Tensor pos = LogOnePlusMaskedSumExp(-alpha * (sim - base), same & ~self, 1) / alpha;
  const at::Tensor neg = LogOnePlusMaskedSumExp(beta * (sim - base), ~same, 1) / beta;
  return (pos + neg).mean();
}

at::Tensor SupConHyperbolicLoss(const at::Tensor& z, const at::Tensor& labels,
                                int64_t images_per_class, double c, double tau) {
  CheckBatch("supcon", z, labels);
  CheckCurvature("supcon", c);
  TORCH_CHECK(tau > 0, "supcon: tau must be > 0, got ", tau);
  const int64_t ipc = images_per_class;
  TORCH_CHECK(ipc >= 2, "supcon: images_per_class must be >= 2, got ", ipc);
  TORCH_CHECK(z.size(0) % ipc == 0, "supcon: batch size ", z.size(0),
              " is not a multiple of images_per_class (", ipc, ")");
  const int64_t groups = z.size(0) / ipc;
  const at::Tensor grouped_labels = labels.view({groups, ipc});
  TORCH_CHECK(grouped_labels.eq(grouped_labels.select(1, 0).unsqueeze(1)).all().item<bool>(),
              "supcon: every run of images_per_class (", ipc,
              ") consecutive rows must share one label");
  const at::Tensor views = z.view({groups, ipc, z.size(1)});
  const at::Tensor self_mask = at::eye(groups, z.options()) * 1e9;
  const at::Tensor target = at::arange(groups, labels.options().dtype(at::kLong));
  at::Tensor total = at::zeros({}, z.options());
  for (int64_t u = 0; u < ipc; ++u) {
    const at::Tensor a = views.select(1, u);
    const at::Tensor within = -DistMatrix(a, a, c) / tau - self_mask;
    for (int64_t v = 0; v < ipc; ++v) {
      if (u == v) continue;
      const at::Tensor across = -DistMatrix(a, views.select(1, v), c) / tau;
      total = total + at::cross_entropy_loss(at::cat({across, within}, 1), target);
    }
  }
  return total / static_cast<double>(ipc * ipc);
}

}  // namespace hier::core
