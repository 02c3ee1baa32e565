// The training objective: lambda_metric * (Proxy-Anchor | Multi-Similarity | SupCon) +
// lambda_hier * HIER, with the learnable parts (class proxies, hierarchical proxies) it owns.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "trainer/core/hier_loss.h"
#include "trainer/core/metric_losses.h"

namespace hier::core {

enum class MetricLossKind { kProxyAnchor, kMultiSimilarity, kSupCon };

// "PA", "MS" or "SupCon" (the reference's --loss names); throws on anything else.
MetricLossKind ParseMetricLoss(const std::string& name);

struct ObjectiveOptions {
  ObjectiveOptions(int64_t num_classes, int64_t dim)
      : num_classes_(num_classes), dim_(dim), hier_(dim) {}
  TORCH_ARG(int64_t, num_classes);  // training classes (Proxy-Anchor proxies)
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(MetricLossKind, metric) = MetricLossKind::kProxyAnchor;
  TORCH_ARG(double, lambda_metric) = 1.0;
  TORCH_ARG(double, lambda_hier) = 0.5;      // 0: HIER is not built and not evaluated
  TORCH_ARG(int64_t, images_per_class) = 2;  // the batch layout SupCon reads
  TORCH_ARG(double, supcon_tau) = 0.2;
  TORCH_ARG(HierLossOptions, hier);  // its dim and c must match the model's
};

struct ObjectiveTerms {
  at::Tensor total;
  at::Tensor metric;
  at::Tensor hier;                          // undefined when lambda_hier is 0
  std::optional<HierStepStats> hier_stats;  // set with hier
};

class ObjectiveImpl : public torch::nn::Cloneable<ObjectiveImpl> {
 public:
  explicit ObjectiveImpl(const ObjectiveOptions& options);
  void reset() override;

  // z [B, D] on the ball, labels [B]; `seed` drives HIER's mining and noise for this step.
  ObjectiveTerms forward(const at::Tensor& z, const at::Tensor& labels, uint64_t seed);

  ObjectiveOptions options;
  ProxyAnchor proxy_anchor{nullptr};  // set for MetricLossKind::kProxyAnchor
  HierLoss hier{nullptr};             // set when lambda_hier > 0
};
TORCH_MODULE(Objective);

}  // namespace hier::core
