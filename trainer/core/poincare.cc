#include "trainer/core/poincare.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

#include "trainer/core/checks.h"

namespace hier::core {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr double kArtanhBound = 1.0 - 1e-5;
constexpr double kNormFloor = 1e-5;
constexpr double kMobiusEps = 1e-5;

at::Tensor RowNorm(const at::Tensor& x, bool keepdim) {
  return at::linalg_vector_norm(x, 2, {-1}, keepdim);
}

class ClampedArtanhFunction : public torch::autograd::Function<ClampedArtanhFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    const at::Tensor clamped = x.clamp(-kArtanhBound, kArtanhBound);
    ctx->save_for_backward({clamped});
    return (at::log(1 + clamped) - at::log(1 - clamped)) * 0.5;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor clamped = ctx->get_saved_variables()[0];
    return {grads[0] / (1 - clamped.pow(2))};
  }
};

// Per-pair quantities of d(x, y) in terms of a = |x|^2, u = <x, y>, b = |y|^2 (all in double).
struct PairTerms {
  double coef_x;  // A: num = -A x + B y
  double coef_y;  // B
  double num_sq;  // |num|^2
  double den;     // 1 - 2cu + c^2 ab + 1e-5
};

inline PairTerms ExpandedTerms(double a, double u, double b, double c) {
  PairTerms t;
  t.coef_x = 1 - 2 * c * u + c * b;
  t.coef_y = 1 - c * a;
  t.num_sq = t.coef_x * t.coef_x * a - 2 * t.coef_x * t.coef_y * u + t.coef_y * t.coef_y * b;
  t.den = 1 - 2 * c * u + c * c * a * b + kMobiusEps;
  return t;
}

// The expanded |num|^2 cancels when x is close to y; below this fraction of its terms' size the
// pair is evaluated from the Möbius sum itself. Its relative error is then at most
// eps_double / kCancellationFraction (~2e-12), far inside the parity tolerances.
constexpr double kCancellationFraction = 1e-4;

inline bool Cancels(const PairTerms& t, double a, double b) {
  const double size = t.coef_x * t.coef_x * a + t.coef_y * t.coef_y * b;
  return t.num_sq <= kCancellationFraction * size;
}

// |num|^2 of a flagged pair evaluated coordinate-wise, exactly as the Möbius sum is.
inline double DirectNumSq(const double* x, const double* y, int64_t dim, const PairTerms& t) {
  double sum = 0;
  for (int64_t k = 0; k < dim; ++k) {
    const double v = -t.coef_x * x[k] + t.coef_y * y[k];
    sum += v * v;
  }
  return sum;
}

// artanh(t) = log((1 + t) / (1 - t)) / 2 with one logarithm instead of the definition's two;
// log1p of 2t / (1 - t) below 1/4, where the quotient's rounding would show relative to t.
inline double ArtanhClamped(double t) {
  const double tc = t > kArtanhBound ? kArtanhBound : t;
  return tc < 0.25 ? 0.5 * std::log1p(2 * tc / (1 - tc)) : 0.5 * std::log((1 + tc) / (1 - tc));
}

// d(distance)/d(t) with t = sqrt(c)|x ⊕ y|: the clamp does not zero it.
inline double DistanceSlope(double t, double sc) {
  const double tc = t > kArtanhBound ? kArtanhBound : t;
  return (2 / sc) / (1 - tc * tc);
}

// Forward and backward of DistMatrix. Saved: the double-precision inputs and their Gram matrix.
class DistMatrixFunction : public torch::autograd::Function<DistMatrixFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y,
                            double c) {
    const double cb = BallCurvature(c);
    const double sc = std::sqrt(cb);
    // Computed on the CPU in double; results go back to the inputs' device and dtype.
    const at::Tensor xd = x.detach().to(at::kCPU, at::kDouble).contiguous();
    const at::Tensor yd = y.detach().to(at::kCPU, at::kDouble).contiguous();
    const at::Tensor gram = at::mm(xd, yd.t()).contiguous();
    const at::Tensor xsq = xd.pow(2).sum(-1).contiguous();
    const at::Tensor ysq = yd.pow(2).sum(-1).contiguous();
    const int64_t n = xd.size(0), m = yd.size(0), dim = xd.size(1);
    at::Tensor out = at::empty({n, m}, xd.options());
    at::Tensor direct = at::zeros({n, m}, xd.options().dtype(at::kBool));
    const double* xp = xd.data_ptr<double>();
    const double* yp = yd.data_ptr<double>();
    const double* gp = gram.data_ptr<double>();
    const double* ap = xsq.data_ptr<double>();
    const double* bp = ysq.data_ptr<double>();
    double* op = out.data_ptr<double>();
    bool* fp = direct.data_ptr<bool>();
    at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        for (int64_t j = 0; j < m; ++j) {
          PairTerms t = ExpandedTerms(ap[i], gp[i * m + j], bp[j], cb);
          if (Cancels(t, ap[i], bp[j])) {
            t.num_sq = DirectNumSq(xp + i * dim, yp + j * dim, dim, t);
            fp[i * m + j] = true;
          }
          op[i * m + j] = (2 / sc) * ArtanhClamped(sc * std::sqrt(t.num_sq) / t.den);
        }
      }
    });
    ctx->save_for_backward({xd, yd, gram, direct});
    ctx->saved_data["c"] = c;
    ctx->saved_data["same"] = x.is_same(y);
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["y_dtype"] = static_cast<int64_t>(y.scalar_type());
    return out.to(x.device(), x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& xd = saved[0];
    const at::Tensor& yd = saved[1];
    const at::Tensor& gram = saved[2];
    const at::Tensor& direct = saved[3];
    const double cb = BallCurvature(ctx->saved_data["c"].toDouble());
    const double sc = std::sqrt(cb);
    const at::Tensor upstream = grads[0].to(at::kCPU, at::kDouble).contiguous();
    const int64_t n = xd.size(0), m = yd.size(0), dim = xd.size(1);
    const at::Tensor xsq = xd.pow(2).sum(-1).contiguous();
    const at::Tensor ysq = yd.pow(2).sum(-1).contiguous();
    // grad_x_i = 2 x_i sum_j alpha_ij + sum_j beta_ij y_j; grad_y_j = 2 y_j sum_i gamma_ij +
    // sum_i beta_ij x_i, with alpha, beta, gamma the derivatives by a, u, b. Directly evaluated
    // pairs keep zero coefficients and add their own gradient afterwards.
    at::Tensor alpha = at::empty({n, m}, xd.options());
    at::Tensor beta = at::empty({n, m}, xd.options());
    at::Tensor gamma = at::empty({n, m}, xd.options());
    std::vector<std::pair<int64_t, int64_t>> direct_pairs;
    const bool* fp = direct.data_ptr<bool>();
    for (int64_t p = 0; p < n * m; ++p) {
      if (fp[p]) direct_pairs.emplace_back(p / m, p % m);
    }
    const double* xp = xd.data_ptr<double>();
    const double* yp = yd.data_ptr<double>();
    const double* gp = gram.data_ptr<double>();
    const double* ap = xsq.data_ptr<double>();
    const double* bp = ysq.data_ptr<double>();
    const double* up = upstream.data_ptr<double>();
    double* alp = alpha.data_ptr<double>();
    double* bep = beta.data_ptr<double>();
    double* gap = gamma.data_ptr<double>();
    at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        for (int64_t j = 0; j < m; ++j) {
          // Branch-free so the loop vectorises; directly evaluated pairs are masked in the stores.
          const int64_t p = i * m + j;
          const double a = ap[i], u = gp[p], b = bp[j];
          const PairTerms t = ExpandedTerms(a, u, b, cb);
          const double root = std::sqrt(t.num_sq);
          const double inv_den = 1 / t.den;
          const double slope = up[p] * DistanceSlope(sc * root * inv_den, sc) * sc * inv_den;
          const double by_num_sq = slope / (2 * root);  // dd/d|num|^2
          const double by_den = -slope * root * inv_den;
          const double dq_da_explicit = t.coef_x * t.coef_x;
          const double dq_dcoef_x = 2 * t.coef_x * a - 2 * t.coef_y * u;
          const double dq_dcoef_y = 2 * t.coef_y * b - 2 * t.coef_x * u;
          const double dq_da = dq_da_explicit - cb * dq_dcoef_y;
          const double dq_du = -2 * t.coef_x * t.coef_y - 2 * cb * dq_dcoef_x;
          const double dq_db = t.coef_y * t.coef_y + cb * dq_dcoef_x;
          const bool direct_pair = fp[p];
          alp[p] = direct_pair ? 0.0 : by_num_sq * dq_da + by_den * cb * cb * b;
          bep[p] = direct_pair ? 0.0 : by_num_sq * dq_du + by_den * (-2 * cb);
          gap[p] = direct_pair ? 0.0 : by_num_sq * dq_db + by_den * cb * cb * a;
        }
      }
    });
    // The distances of a set with itself (x and y one tensor) need one product, not two: the
    // tensor's gradient is the sum of both sides'. The direct pairs then add into that one buffer.
    const bool same = ctx->saved_data["same"].toBool();
    at::Tensor grad_x, grad_y;
    if (same) {
      grad_x = xd * (2 * (alpha.sum(1, /*keepdim=*/true) + gamma.sum(0).unsqueeze(1))) +
               at::mm(beta + beta.t(), xd);
      grad_y = grad_x;
    } else {
      grad_x = xd * (2 * alpha.sum(1, /*keepdim=*/true)) + at::mm(beta, yd);
      grad_y = yd * (2 * gamma.sum(0).unsqueeze(1)) + at::mm(beta.t(), xd);
    }
    double* gxp = grad_x.data_ptr<double>();
    double* gyp = grad_y.data_ptr<double>();
    for (const auto& [i, j] : direct_pairs) {
      AddDirectPairGradient(xp + i * dim, yp + j * dim, dim, ap[i], gp[i * m + j], bp[j], cb,
                            up[i * m + j], gxp + i * dim, gyp + j * dim);
    }
    const auto x_dtype = static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt());
    const auto y_dtype = static_cast<at::ScalarType>(ctx->saved_data["y_dtype"].toInt());
    const at::Device device = grads[0].device();
    return {grad_x.to(device, x_dtype), same ? at::Tensor() : grad_y.to(device, y_dtype),
            at::Tensor()};
  }

 private:
  // Gradient of upstream * d(x, y) for one pair from the Möbius sum num = -A x + B y itself.
  // A zero sum has a zero norm gradient (as torch's norm), so the pair then contributes nothing.
  static void AddDirectPairGradient(const double* x, const double* y, int64_t dim, double a,
                                    double u, double b, double c, double upstream, double* grad_x,
                                    double* grad_y) {
    const PairTerms t = ExpandedTerms(a, u, b, c);
    const double num_sq = DirectNumSq(x, y, dim, t);
    if (num_sq == 0 || upstream == 0) return;
    const double sc = std::sqrt(c);
    const double root = std::sqrt(num_sq);
    const double slope = upstream * DistanceSlope(sc * root / t.den, sc) * sc;  // dL/d(|num|/den)
    const double by_num = slope / (t.den * root);  // times num gives dL/dnum
    const double by_den = -slope * root / (t.den * t.den);
    double x_dot_v = 0, y_dot_v = 0;
    for (int64_t k = 0; k < dim; ++k) {
      const double v = by_num * (-t.coef_x * x[k] + t.coef_y * y[k]);
      x_dot_v += x[k] * v;
      y_dot_v += y[k] * v;
    }
    for (int64_t k = 0; k < dim; ++k) {
      const double v = by_num * (-t.coef_x * x[k] + t.coef_y * y[k]);
      grad_x[k] += -t.coef_x * v + 2 * c * x_dot_v * y[k] - 2 * c * y_dot_v * x[k] +
                   by_den * (-2 * c * y[k] + 2 * c * c * b * x[k]);
      grad_y[k] += t.coef_y * v + 2 * c * x_dot_v * (x[k] - y[k]) +
                   by_den * (-2 * c * x[k] + 2 * c * c * a * y[k]);
    }
  }
};

void CheckPair(const char* fn, const at::Tensor& x, const at::Tensor& y, double c) {
  CheckCurvature(fn, c);
  CheckMatrix(fn, "x", x);
  CheckMatrix(fn, "y", y);
  CheckSameWidth(fn, "x", x, "y", y);
}

}  // namespace

double BallCurvature(double c) { return static_cast<double>(static_cast<float>(c)); }

at::Tensor ClampedArtanh(const at::Tensor& x) { return ClampedArtanhFunction::apply(x); }

at::Tensor Expmap0(const at::Tensor& u, double c) {
  CheckCurvature("expmap0", c);
  CheckPoints("expmap0", "u", u);
  const double sc = std::sqrt(BallCurvature(c));
  const at::Tensor scaled_norm = RowNorm(u, true).clamp_min(kNormFloor) * sc;
  return at::tanh(scaled_norm.clamp(-15, 15)) * u / scaled_norm;
}

at::Tensor Logmap0(const at::Tensor& y, double c) {
  CheckCurvature("logmap0", c);
  CheckPoints("logmap0", "y", y);
  const double sc = std::sqrt(BallCurvature(c));
  const at::Tensor norm = RowNorm(y, true).clamp_min(kNormFloor);
  return y / norm / sc * ClampedArtanh(norm * sc);
}

at::Tensor Project(const at::Tensor& x, double c) {
  CheckCurvature("project", c);
  CheckPoints("project", "x", x);
  const double max_norm = (1 - 1e-3) / std::sqrt(BallCurvature(c));
  const at::Tensor norm = RowNorm(x, true).clamp_min(kNormFloor);
  return at::where(norm > max_norm, x / norm * max_norm, x);
}

at::Tensor ConformalFactor(const at::Tensor& x, double c) {
  CheckCurvature("conformal_factor", c);
  CheckPoints("conformal_factor", "x", x);
  return 2 / (1 - BallCurvature(c) * x.pow(2).sum(-1));
}

at::Tensor MobiusAdd(const at::Tensor& x, const at::Tensor& y, double c) {
  CheckCurvature("mobius_add", c);
  CheckPoints("mobius_add", "x", x);
  CheckPoints("mobius_add", "y", y);
  CheckSameWidth("mobius_add", "x", x, "y", y);
  const double cb = BallCurvature(c);
  const at::Tensor x2 = x.pow(2).sum(-1, true);
  const at::Tensor y2 = y.pow(2).sum(-1, true);
  const at::Tensor xy = (x * y).sum(-1, true);
  const at::Tensor num = (1 + 2 * cb * xy + cb * y2) * x + (1 - cb * x2) * y;
  const at::Tensor den = 1 + 2 * cb * xy + cb * cb * x2 * y2;
  return num / (den + kMobiusEps);
}

at::Tensor DistanceToOrigin(const at::Tensor& x, double c) {
  CheckCurvature("distance_to_origin", c);
  CheckPoints("distance_to_origin", "x", x);
  const double sc = std::sqrt(BallCurvature(c));
  return ClampedArtanh(RowNorm(x, false) * sc) * (2 / sc);
}

at::Tensor DistMatrix(const at::Tensor& x, const at::Tensor& y, double c) {
  CheckPair("dist_matrix", x, y, c);
  return DistMatrixFunction::apply(x, y, c);
}

at::Tensor DistMatrixBroadcast(const at::Tensor& x, const at::Tensor& y, double c) {
  CheckPair("dist_matrix", x, y, c);
  const double sc = std::sqrt(BallCurvature(c));
  const at::Tensor sums = MobiusAdd(-x.unsqueeze(1), y.unsqueeze(0), c);
  return ClampedArtanh(RowNorm(sums, false) * sc) * (2 / sc);
}

at::Tensor PoincareToLorentz(const at::Tensor& p, double c) {
  CheckCurvature("poincare_to_lorentz", c);
  CheckPoints("poincare_to_lorentz", "p", p);
  const double cb = BallCurvature(c);
  const at::Tensor shrink = 1 - cb * p.pow(2).sum(-1, true);
  const at::Tensor x0 = (2 - shrink) / (std::sqrt(cb) * shrink);
  return at::cat({x0, 2 * p / shrink}, -1);
}

at::Tensor LorentzToPoincare(const at::Tensor& x, double c) {
  CheckCurvature("lorentz_to_poincare", c);
  CheckPoints("lorentz_to_poincare", "x", x);
  TORCH_CHECK(x.size(-1) >= 2, "lorentz_to_poincare: x needs at least 2 coordinates, got ",
              x.size(-1));
  const double sc = std::sqrt(BallCurvature(c));
  const at::Tensor x0 = x.narrow(-1, 0, 1);
  return x.narrow(-1, 1, x.size(-1) - 1) / (1 + sc * x0);
}

}  // namespace hier::core
