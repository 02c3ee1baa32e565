// Poincaré-ball geometry on batched tensors (float32 or float64, with autograd), with the clamps
// and epsilons of the HIER reference implementation.
//
// Points are rows of the last dimension: x has shape [..., D] and lies in the ball
// {x : c|x|^2 < 1}. Every ball operation uses the curvature rounded to float32 (BallCurvature),
// as the reference does; see ../shared/reference/hier/README.md.
#pragma once

#include <ATen/core/Tensor.h>

namespace hier::core {

// The curvature the ball operations use: c rounded to float32 (0.1 -> 0.10000000149011612).
double BallCurvature(double c);

// artanh(clamp(x, -1 + 1e-5, 1 - 1e-5)); its gradient 1 / (1 - x_c^2) is not zeroed where the
// clamp is active.
at::Tensor ClampedArtanh(const at::Tensor& x);

// Exponential map at the origin: tanh(sqrt(c) n) u / (sqrt(c) n), n = max(|u|, 1e-5).
at::Tensor Expmap0(const at::Tensor& u, double c);
// Logarithmic map at the origin: artanh(sqrt(c) n) y / (sqrt(c) n), n = max(|y|, 1e-5).
at::Tensor Logmap0(const at::Tensor& y, double c);
// Rescales points beyond (1 - 1e-3) of the radius onto that sphere.
at::Tensor Project(const at::Tensor& x, double c);
// Conformal factor 2 / (1 - c|x|^2), shape [...] (the last dimension is reduced).
at::Tensor ConformalFactor(const at::Tensor& x, double c);
// Möbius addition x ⊕ y (rows paired; shapes broadcast), with the reference's +1e-5 denominator.
at::Tensor MobiusAdd(const at::Tensor& x, const at::Tensor& y, double c);
// Distance of each point to the origin, (2 / sqrt(c)) artanh(sqrt(c) |x|), shape [...].
at::Tensor DistanceToOrigin(const at::Tensor& x, double c);

// Pairwise distances D[i, j] = (2 / sqrt(c)) artanh(sqrt(c) |(-x_i) ⊕ y_j|) for x [N, D] and
// y [M, D], in O(NM) memory: a Gram product in double precision, with an exact per-pair
// evaluation where the expanded formula would cancel (near-coincident points). Differentiable in
// x and y; passing the same tensor twice is supported (its gradients add up).
at::Tensor DistMatrix(const at::Tensor& x, const at::Tensor& y, double c);
// The same distances by broadcasting an [N, M, D] tensor of Möbius sums, as the reference does:
// the slow, obviously-correct baseline the fast path is tested and benchmarked against.
at::Tensor DistMatrixBroadcast(const at::Tensor& x, const at::Tensor& y, double c);

// Poincaré point p -> hyperboloid point (x0, x1..xd) with x0 = (1 + c|p|^2) / (sqrt(c)(1 - c|p|^2))
// and xi = 2 p_i / (1 - c|p|^2); shape [..., D + 1] with x0 first.
at::Tensor PoincareToLorentz(const at::Tensor& p, double c);
// The inverse map: p_i = xi / (1 + sqrt(c) x0).
at::Tensor LorentzToPoincare(const at::Tensor& x, double c);

}  // namespace hier::core
