// Poincaré-ball geometry for the index, in double precision and without LibTorch: the exact
// distance the re-rank sorts by, the hyperboloid (Lorentz) vectors whose plain inner product
// orders neighbours exactly as that distance does, the tangent (logmap0) coordinates approximate
// indexes are built on, and the validation every stored or queried point passes first.
//
// Matrix convention: a point is `dim` contiguous floats (row-major n x dim for many points).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace hier::index {

// OK when `point` (dim values) is finite and strictly inside the ball of curvature c
// (c|p|^2 < 1); otherwise InvalidArgument naming `field` and the problem.
absl::Status ValidateBallPoint(const float* point, int64_t dim, double c, const char* field);

// Hyperbolic distance (1/sqrt c) arcosh(1 + 2c|p-q|^2 / ((1-c|p|^2)(1-c|q|^2))), in double.
double PoincareDistance(const float* p, const float* q, int64_t dim, double c);

// Floats in an item's or a query's Lorentz vector.
constexpr int64_t LorentzWidth(int64_t dim) { return dim + 2; }

// The stored vector of an item, from its hyperboloid point x (x0 = (1 + c|p|^2) /
// (sqrt(c) (1 - c|p|^2)), xi = 2 pi / (1 - c|p|^2)): (x1..xd, a, a) with a = x0 - 1/sqrt(c),
// written to `out` (LorentzWidth(dim) floats).
void LorentzItemVector(const float* p, int64_t dim, double c, float* out);

// The query vector (y1..yd, -b, -1/sqrt(c)) with b = y0 - 1/sqrt(c). Its inner product with an
// item vector is <x, y>_L + b/sqrt(c) + 1/c, where the Lorentz product <x, y>_L =
// -cosh(sqrt(c) d) / c grows as the distance d shrinks: a query-only shift, so a
// maximum-inner-product scan over item vectors returns neighbours in Poincaré order. Unlike the
// plain (x1..xd, x0) . (y1..yd, -y0), whose terms stay near 1/c while the product flattens
// around -1/c, these terms vanish at the origin, so float32 still orders close points there.
void LorentzQueryVector(const float* q, int64_t dim, double c, float* out);

// Tangent coordinates at the origin: logmap0(p) = artanh(sqrt c |p|) p / (sqrt c |p|).
void LogMap0(const float* p, int64_t dim, double c, float* out);

}  // namespace hier::index
