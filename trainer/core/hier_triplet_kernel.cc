#include "trainer/core/hier_triplet_kernel.h"

#include <cmath>
#include <limits>
#include <vector>

#include "trainer/core/fast_math.h"

namespace hier::core {
namespace {

// Exponential at working precision: the vectorisable approximation in float, libm in double (the
// double path serves parity checks, where 1e-9 agreement with the reference matters more).
inline float WorkingExp(float x) { return FastExp(x); }
inline double WorkingExp(double x) { return std::exp(x); }

// Index of the first entry equal to `value` (the maximum just computed over the same row).
template <typename T>
int64_t FirstIndexOf(const T* row, int64_t n, T value) {
  for (int64_t q = 0; q < n; ++q) {
    if (row[q] == value) return q;
  }
  return 0;  // unreachable for a value taken from the row; keeps the result in range regardless
}

// Gradient share of `a` in max(a, b): all of it when a wins, half at an exact tie (as torch).
template <typename T>
inline T MaxShare(T a, T b, T grad) {
  return a > b ? grad : (a == b ? T(0.5) * grad : T(0));
}

template <typename T>
struct Scratch {
  explicit Scratch(int64_t p) : m_ij(p), m_ijk(p), w_ij(p), w_ijk(p), g_i(p), g_j(p), g_k(p) {}
  std::vector<T> m_ij, m_ijk;  // elementwise maxima of the members' rows
  std::vector<T> w_ij, w_ijk;  // unnormalised (noisy) softmax weights of the two LCA choices
  std::vector<T> g_i, g_j, g_k;  // gradient rows of the three members for one triplet
};

template <typename T>
__attribute__((always_inline)) inline void KernelBody(
    const T* dist, const int64_t* anchors, const int64_t* positives, const int64_t* negatives,
    int64_t begin, int64_t end, const HierTripletKernelParams& params,
    const HierTripletOutputs& out, T* grad) {
  const int64_t num_proxies = params.num_proxies;
  const T inv_tau = T(1) / static_cast<T>(params.tau);
  const T margin = static_cast<T>(params.margin);
  const T scale = static_cast<T>(params.grad_scale);
  const CounterRng rng{params.noise_key};
  Scratch<T> s(num_proxies);
  T* __restrict m_ij = s.m_ij.data();
  T* __restrict m_ijk = s.m_ijk.data();
  T* __restrict w_ij = s.w_ij.data();
  T* __restrict w_ijk = s.w_ijk.data();
  T* __restrict g_i = s.g_i.data();
  T* __restrict g_j = s.g_j.data();
  T* __restrict g_k = s.g_k.data();
  for (int64_t t = begin; t < end; ++t) {
    const int64_t i = anchors[t], j = positives[t], k = negatives[t];
    const T* __restrict d_i = dist + i * num_proxies;
    const T* __restrict d_j = dist + j * num_proxies;
    const T* __restrict d_k = dist + k * num_proxies;

    T min_ij = std::numeric_limits<T>::infinity();
    T min_ijk = std::numeric_limits<T>::infinity();
#pragma omp simd reduction(min : min_ij, min_ijk)
    for (int64_t q = 0; q < num_proxies; ++q) {
      const T a = d_i[q] > d_j[q] ? d_i[q] : d_j[q];
      const T b = d_k[q] > a ? d_k[q] : a;
      m_ij[q] = a;
      m_ijk[q] = b;
      min_ij = a < min_ij ? a : min_ij;
      min_ijk = b < min_ijk ? b : min_ijk;
    }

    // Softmax weights relative to the best logit, so every weight is at most exp(0) times the
    // noise factor: no overflow, and the argmax of the weights is the argmax of the logits.
    T sum_ij = 0, sum_ijk = 0, best_ij = 0, best_ijk = 0;
    const uint32_t counter = static_cast<uint32_t>(t) * static_cast<uint32_t>(2 * num_proxies);
    if (params.gumbel_noise) {
#pragma omp simd reduction(+ : sum_ij, sum_ijk) reduction(max : best_ij, best_ijk)
      for (int64_t q = 0; q < num_proxies; ++q) {
        const uint32_t c = counter + static_cast<uint32_t>(q);
        const T a = WorkingExp((min_ij - m_ij[q]) * inv_tau) *
                    static_cast<T>(rng.ExpGumbel(c));
        const T b = WorkingExp((min_ijk - m_ijk[q]) * inv_tau) *
                    static_cast<T>(rng.ExpGumbel(c + static_cast<uint32_t>(num_proxies)));
        w_ij[q] = a;
        w_ijk[q] = b;
        sum_ij += a;
        sum_ijk += b;
        best_ij = a > best_ij ? a : best_ij;
        best_ijk = b > best_ijk ? b : best_ijk;
      }
    } else {
#pragma omp simd reduction(+ : sum_ij, sum_ijk) reduction(max : best_ij, best_ijk)
      for (int64_t q = 0; q < num_proxies; ++q) {
        const T a = WorkingExp((min_ij - m_ij[q]) * inv_tau);
        const T b = WorkingExp((min_ijk - m_ijk[q]) * inv_tau);
        w_ij[q] = a;
        w_ijk[q] = b;
        sum_ij += a;
        sum_ijk += b;
        best_ij = a > best_ij ? a : best_ij;
        best_ijk = b > best_ijk ? b : best_ijk;
      }
    }
    const int64_t l_ij = FirstIndexOf(w_ij, num_proxies, best_ij);
    const int64_t l_ijk = FirstIndexOf(w_ijk, num_proxies, best_ijk);
    out.lca_ij[t] = l_ij;
    out.lca_ijk[t] = l_ijk;
    out.active[t] = l_ij != l_ijk;
    out.loss[t] = 0;
    if (l_ij == l_ijk) continue;

    // Each member should be nearer its own LCA than the other one, by the margin.
    const T h_i = d_i[l_ij] - d_i[l_ijk] + margin;
    const T h_j = d_j[l_ij] - d_j[l_ijk] + margin;
    const T h_k = d_k[l_ijk] - d_k[l_ij] + margin;
    const T c_i = h_i > 0 ? T(1) : T(0);
    const T c_j = h_j > 0 ? T(1) : T(0);
    const T c_k = h_k > 0 ? T(1) : T(0);
    out.loss[t] = static_cast<double>(c_i * h_i + c_j * h_j + c_k * h_k);
    if (grad == nullptr || c_i + c_j + c_k == 0) continue;

    // Straight-through selection: the loss reads the one-hot choice, the gradient flows through
    // the softmax. The upstream gradient of the (ij) weights is G = c_i d_i + c_j d_j - c_k d_k,
    // that of the (ijk) weights is -G.
    const T inv_sum_ij = T(1) / sum_ij, inv_sum_ijk = T(1) / sum_ijk;
    T dot_ij = 0, dot_ijk = 0;
#pragma omp simd reduction(+ : dot_ij, dot_ijk)
    for (int64_t q = 0; q < num_proxies; ++q) {
      const T g = c_i * d_i[q] + c_j * d_j[q] - c_k * d_k[q];
      dot_ij += w_ij[q] * g;
      dot_ijk += w_ijk[q] * g;
    }
    dot_ij *= inv_sum_ij;
    dot_ijk *= inv_sum_ijk;
    const T coef_ij = -scale * inv_tau * inv_sum_ij;
    const T coef_ijk = -scale * inv_tau * inv_sum_ijk;
#pragma omp simd
    for (int64_t q = 0; q < num_proxies; ++q) {
      const T g = c_i * d_i[q] + c_j * d_j[q] - c_k * d_k[q];
      const T grad_m_ij = coef_ij * w_ij[q] * (g - dot_ij);      // d loss / d m_ij[q]
      const T grad_m_ijk = coef_ijk * w_ijk[q] * (dot_ijk - g);  // d loss / d m_ijk[q]
      const T total_ij = grad_m_ij + MaxShare(m_ij[q], d_k[q], grad_m_ijk);
      g_k[q] = MaxShare(d_k[q], m_ij[q], grad_m_ijk);
      g_i[q] = MaxShare(d_i[q], d_j[q], total_ij);
      g_j[q] = MaxShare(d_j[q], d_i[q], total_ij);
    }
    // Separate loops: rows may coincide (k == i for self-negatives).
    T* grad_i = grad + i * num_proxies;
    T* grad_j = grad + j * num_proxies;
    T* grad_k = grad + k * num_proxies;
    for (int64_t q = 0; q < num_proxies; ++q) grad_i[q] += g_i[q];
    for (int64_t q = 0; q < num_proxies; ++q) grad_j[q] += g_j[q];
    for (int64_t q = 0; q < num_proxies; ++q) grad_k[q] += g_k[q];
    // Direct terms: the distances to the two selected proxies.
    grad_i[l_ij] += scale * c_i;
    grad_i[l_ijk] -= scale * c_i;
    grad_j[l_ij] += scale * c_j;
    grad_j[l_ijk] -= scale * c_j;
    grad_k[l_ijk] += scale * c_k;
    grad_k[l_ij] -= scale * c_k;
  }
}

}  // namespace

// Compiled twice, for AVX2 and for the baseline ISA; the loader picks the best the CPU runs.
__attribute__((target_clones("avx2", "default"))) void HierTripletKernel(
    const float* dist, const int64_t* anchors, const int64_t* positives, const int64_t* negatives,
    int64_t begin, int64_t end, const HierTripletKernelParams& params,
    const HierTripletOutputs& out, float* grad) {
  KernelBody(dist, anchors, positives, negatives, begin, end, params, out, grad);
}

__attribute__((target_clones("avx2", "default"))) void HierTripletKernel(
    const double* dist, const int64_t* anchors, const int64_t* positives,
    const int64_t* negatives, int64_t begin, int64_t end, const HierTripletKernelParams& params,
    const HierTripletOutputs& out, double* grad) {
  KernelBody(dist, anchors, positives, negatives, begin, end, params, out, grad);
}

}  // namespace hier::core
