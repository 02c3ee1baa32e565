#include "trainer/core/to_poincare.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "trainer/core/checks.h"
#include "trainer/core/poincare.h"

namespace hier::core {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class RiemannianRescaleFunction : public torch::autograd::Function<RiemannianRescaleFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, double c) {
    ctx->save_for_backward({y});
    ctx->saved_data["c"] = c;
    return y.view_as(y);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor y = ctx->get_saved_variables()[0];
    const double c = ctx->saved_data["c"].toDouble();
    const at::Tensor scale = (1 - c * y.pow(2).sum(-1, true)).pow(2) / 4;
    return {grads[0] * scale, at::Tensor()};
  }
};

}  // namespace

at::Tensor RiemannianGradientRescale(const at::Tensor& y, double c) {
  return RiemannianRescaleFunction::apply(y, c);
}

at::Tensor ToPoincare(const at::Tensor& x, const ToPoincareOptions& options) {
  CheckCurvature("to_poincare", options.c());
  CheckPoints("to_poincare", "x", x);
  at::Tensor clipped = x;
  if (options.clip_r()) {
    const double clip_r = *options.clip_r();
    TORCH_CHECK(clip_r > 0, "to_poincare: clip_r must be > 0, got ", clip_r);
    const at::Tensor norm = at::linalg_vector_norm(x, 2, {-1}, true) + 1e-5;
    clipped = x * at::minimum(at::ones_like(norm), clip_r / norm);
  }
  const at::Tensor y = Project(Expmap0(clipped, options.c()), options.c());
  return options.riemannian() ? RiemannianGradientRescale(y, options.c()) : y;
}

ToPoincareLayerImpl::ToPoincareLayerImpl(const ToPoincareOptions& options) : options(options) {
  reset();
}

void ToPoincareLayerImpl::reset() {}

at::Tensor ToPoincareLayerImpl::forward(const at::Tensor& x) { return ToPoincare(x, options); }

}  // namespace hier::core
