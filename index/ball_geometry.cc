#include "index/ball_geometry.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace hier::index {
namespace {

double SquaredNorm(const float* p, int64_t dim) {
  double sum = 0;
  for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(p[i]) * p[i];
  return sum;
}

// a = x0 - 1/sqrt(c) = 2 sqrt(c) |p|^2 / (1 - c|p|^2) for the hyperboloid point x of p, and the
// spatial coordinates xi = 2 pi / (1 - c|p|^2) written to `out`.
double SpatialAndShiftedTime(const float* p, int64_t dim, double c, float* out) {
  const double squared = SquaredNorm(p, dim);
  const double denominator = 1.0 - c * squared;
  for (int64_t i = 0; i < dim; ++i) out[i] = static_cast<float>(2.0 * p[i] / denominator);
  return 2.0 * std::sqrt(c) * squared / denominator;
}

}  // namespace

absl::Status ValidateBallPoint(const float* point, int64_t dim, double c, const char* field) {
  for (int64_t i = 0; i < dim; ++i) {
    if (!std::isfinite(point[i])) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": coordinate ", i, " is ",
                                                     std::to_string(point[i]),
                                                     "; every coordinate must be finite"));
    }
  }
  const double scaled = c * SquaredNorm(point, dim);
  if (scaled >= 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": the point lies on or outside the Poincare ball of curvature ", c,
                     " (c|p|^2 = ", scaled, ", must be < 1)"));
  }
  return absl::OkStatus();
}

double PoincareDistance(const float* p, const float* q, int64_t dim, double c) {
  double diff = 0, p_norm = 0, q_norm = 0;
  for (int64_t i = 0; i < dim; ++i) {
    const double a = p[i], b = q[i];
    diff += (a - b) * (a - b);
    p_norm += a * a;
    q_norm += b * b;
  }
  const double argument = 1.0 + 2.0 * c * diff / ((1.0 - c * p_norm) * (1.0 - c * q_norm));
  return std::acosh(argument) / std::sqrt(c);
}

void LorentzItemVector(const float* p, int64_t dim, double c, float* out) {
  const double a = SpatialAndShiftedTime(p, dim, c, out);
  out[dim] = static_cast<float>(a);
  out[dim + 1] = static_cast<float>(a);
}

void LorentzQueryVector(const float* q, int64_t dim, double c, float* out) {
  const double b = SpatialAndShiftedTime(q, dim, c, out);
  out[dim] = static_cast<float>(-b);
  out[dim + 1] = static_cast<float>(-1.0 / std::sqrt(c));
}

void LogMap0(const float* p, int64_t dim, double c, float* out) {
  const double norm = std::sqrt(SquaredNorm(p, dim));
  const double sqrt_c = std::sqrt(c);
  // artanh(x) / x -> 1 as x -> 0: the origin maps to itself.
  const double scale = norm > 0 ? std::atanh(sqrt_c * norm) / (sqrt_c * norm) : 1.0;
  for (int64_t i = 0; i < dim; ++i) out[i] = static_cast<float>(scale * p[i]);
}

}  // namespace hier::index
