#include "trainer/core/objective.h"

#include <ATen/ATen.h>

#include <cmath>

namespace hier::core {

MetricLossKind ParseMetricLoss(const std::string& name) {
  if (name == "PA") return MetricLossKind::kProxyAnchor;
  if (name == "MS") return MetricLossKind::kMultiSimilarity;
  TORCH_CHECK(name == "SupCon", "objective: unknown metric loss '", name,
              "' (expected PA, MS or SupCon)");
  return MetricLossKind::kSupCon;
}

ObjectiveImpl::ObjectiveImpl(const ObjectiveOptions& options) : options(options) { reset(); }

void ObjectiveImpl::reset() {
  const ObjectiveOptions& o = options;
  TORCH_CHECK(std::isfinite(o.lambda_metric()) && o.lambda_metric() >= 0,
              "objective: lambda_metric must be finite and >= 0, got ", o.lambda_metric());
  TORCH_CHECK(std::isfinite(o.lambda_hier()) && o.lambda_hier() >= 0,
              "objective: lambda_hier must be finite and >= 0, got ", o.lambda_hier());
  TORCH_CHECK(o.lambda_metric() + o.lambda_hier() > 0,
              "objective: lambda_metric and lambda_hier are both 0: nothing to train");
  TORCH_CHECK(o.hier().dim() == o.dim(), "objective: hier.dim (", o.hier().dim(),
              ") differs from dim (", o.dim(), ")");
  if (o.metric() == MetricLossKind::kProxyAnchor) {
    proxy_anchor =
        register_module("proxy_anchor", ProxyAnchor(ProxyAnchorOptions(o.num_classes(), o.dim())));
  }
  if (o.lambda_hier() > 0) hier = register_module("hier", HierLoss(o.hier()));
}

ObjectiveTerms ObjectiveImpl::forward(const at::Tensor& z, const at::Tensor& labels,
                                      uint64_t seed) {
  ObjectiveTerms terms;
  switch (options.metric()) {
    case MetricLossKind::kProxyAnchor:
      terms.metric = proxy_anchor->forward(z, labels);
      break;
    case MetricLossKind::kMultiSimilarity:
      terms.metric = MultiSimilarityLoss(z, labels);
      break;
    case MetricLossKind::kSupCon:
      terms.metric = SupConHyperbolicLoss(z, labels, options.images_per_class(), options.hier().c(),
                                          options.supcon_tau());
      break;
  }
  terms.total = options.lambda_metric() * terms.metric;
  if (hier) {
    const HierLossResult result = hier->forward(z, labels, seed);
    terms.hier = result.loss;
    terms.hier_stats = SummariseStep(result);
    terms.total = terms.total + options.lambda_hier() * terms.hier;
  }
  return terms;
}

}  // namespace hier::core
