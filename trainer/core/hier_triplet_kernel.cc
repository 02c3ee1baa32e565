#include "trainer/core/hier_triplet_kernel.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <new>

#include "trainer/core/fast_math.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace hier::core {
namespace {

// 32-byte lanes of T (8 floats or 4 doubles), written with GCC vector extensions so the loops
// below are vectorised by construction, whatever the auto-vectoriser makes of them.
template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
  using V = FloatX8;
  using Mask = IntX8;
  using Index = int32_t;
  static constexpr int64_t kWidth = 8;
  // Softmax weights with the fast exponential; noise factors eight at a time.
  static V Exp(V x) { return FastExp(x); }
  static V Noise(uint32_t first, uint32_t stream) {
    return TripletNoise::ExpGumbel(UintX8{0, 1, 2, 3, 4, 5, 6, 7} + first, stream);
  }
};
typedef double DoubleX4 __attribute__((vector_size(32)));
typedef int64_t LongX4 __attribute__((vector_size(32)));
template <>
struct Lanes<double> {
  using V = DoubleX4;
  using Mask = LongX4;
  using Index = int64_t;
  static constexpr int64_t kWidth = 4;
  // libm in double: this path serves parity checks, where 1e-9 agreement matters more than speed.
  static V Exp(V x) {
    for (int l = 0; l < 4; ++l) x[l] = std::exp(x[l]);
    return x;
  }
  static V Noise(uint32_t first, uint32_t stream) {
    V v;
    for (int l = 0; l < 4; ++l) v[l] = TripletNoise::ExpGumbel(first + l, stream);
    return v;
  }
};

template <typename V>
V Load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V>
void Store(void* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// Gradient share of `a` in max(a, b): all of it when a wins, half at an exact tie (as torch).
template <typename T, typename V>
inline V MaxShare(V a, V b, V grad) {
  return a > b ? grad : (a == b ? grad * T(0.5) : V{});
}

// Per-call working rows, 32-byte aligned for the vector types (std::vector does not promise it).
template <typename T>
class Scratch {
 public:
  using V = typename Lanes<T>::V;
  explicit Scratch(int64_t chunks)
      : storage_(static_cast<V*>(std::aligned_alloc(sizeof(V), 8 * chunks * sizeof(V))),
                 &std::free) {
    if (!storage_) throw std::bad_alloc();
    V* next = storage_.get();
    for (V** row : {&m_ij, &m_ijk, &w_ij, &w_ijk, &valid}) {
      *row = next;
      next += chunks;
    }
    g = next;
  }

  V* m_ij;  // elementwise maxima of the members' rows
  V* m_ijk;
  V* w_ij;  // unnormalised (noisy) softmax weights of the two LCA choices
  V* w_ijk;
  V* valid;  // 1 on proxy lanes, 0 on padding
  V* g;      // gradient rows of the three members for one triplet (3 x chunks)

 private:
  std::unique_ptr<V, decltype(&std::free)> storage_;
};

// The lane-wise running maximum and the first chunk where each lane reached it.
template <typename T>
struct ArgMax {
  using V = typename Lanes<T>::V;
  using Mask = typename Lanes<T>::Mask;
  V best{};
  Mask chunk{};

  void Update(V value, int64_t c) {
    const Mask better = value > best;
    chunk = better ? Mask{} + static_cast<typename Lanes<T>::Index>(c) : chunk;
    best = better ? value : best;
  }
  // The first index of the global maximum: the lowest chunk * width + lane among the lanes that
  // hold it.
  int64_t Index() const {
    T top = best[0];
    for (int l = 1; l < Lanes<T>::kWidth; ++l) top = best[l] > top ? best[l] : top;
    int64_t index = std::numeric_limits<int64_t>::max();
    for (int l = 0; l < Lanes<T>::kWidth; ++l) {
      const int64_t here = chunk[l] * Lanes<T>::kWidth + l;
      if (best[l] == top && here < index) index = here;
    }
    return index;
  }
};

template <typename V>
inline auto HorizontalSum(V v) {
  auto s = v[0];
  for (size_t l = 1; l < sizeof(V) / sizeof(v[0]); ++l) s += v[l];
  return s;
}

template <typename V>
inline auto HorizontalMin(V v) {
  auto s = v[0];
  for (size_t l = 1; l < sizeof(V) / sizeof(v[0]); ++l) s = v[l] < s ? v[l] : s;
  return s;
}

// Flushes denormal results and inputs to zero on this thread while alive. Softmax weights of far
// proxies and their gradients sink below 1e-38, where x86 arithmetic slows down a hundredfold;
// values that small change nothing the loss or its gradient can show.
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(__i386__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }  // FTZ | DAZ
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#endif
};

template <typename T>
__attribute__((always_inline)) inline void KernelBody(const T* dist, const int64_t* anchors,
                                                      const int64_t* positives,
                                                      const int64_t* negatives, int64_t begin,
                                                      int64_t end,
                                                      const HierTripletKernelParams& params,
                                                      const HierTripletOutputs& out, T* grad) {
  using L = Lanes<T>;
  using V = typename L::V;
  constexpr int64_t kWidth = L::kWidth;
  const int64_t num_proxies = params.num_proxies;
  const int64_t stride = params.row_stride;
  const int64_t chunks = stride / kWidth;
  const T inv_tau = T(1) / static_cast<T>(params.tau);
  const T margin = static_cast<T>(params.margin);
  const T scale = static_cast<T>(params.grad_scale);
  const FlushDenormals flush;
  Scratch<T> s(chunks);
  for (int64_t c = 0; c < chunks; ++c) {
    for (int64_t l = 0; l < kWidth; ++l) s.valid[c][l] = c * kWidth + l < num_proxies ? 1 : 0;
  }
  V* g_i = s.g;
  V* g_j = g_i + chunks;
  V* g_k = g_j + chunks;

  for (int64_t t = begin; t < end; ++t) {
    const int64_t i = anchors[t], j = positives[t], k = negatives[t];
    const T* d_i = dist + i * stride;
    const T* d_j = dist + j * stride;
    const T* d_k = dist + k * stride;

    V min_ij = V{} + std::numeric_limits<T>::infinity();
    V min_ijk = min_ij;
    for (int64_t c = 0; c < chunks; ++c) {
      const V di = Load<V>(d_i + c * kWidth), dj = Load<V>(d_j + c * kWidth);
      const V dk = Load<V>(d_k + c * kWidth);
      const V a = di > dj ? di : dj;
      const V b = dk > a ? dk : a;
      s.m_ij[c] = a;
      s.m_ijk[c] = b;
      min_ij = a < min_ij ? a : min_ij;
      min_ijk = b < min_ijk ? b : min_ijk;
    }
    const T low_ij = HorizontalMin(min_ij), low_ijk = HorizontalMin(min_ijk);

    // Softmax weights relative to the best logit, so every weight is at most exp(0) times the
    // noise factor: no overflow, and the argmax of the weights is the argmax of the logits.
    V sum_ij{}, sum_ijk{};
    ArgMax<T> arg_ij, arg_ijk;
    const TripletNoise noise = TripletNoise::For(params.noise_key, static_cast<uint64_t>(t));
    for (int64_t c = 0; c < chunks; ++c) {
      V a = L::Exp((low_ij - s.m_ij[c]) * inv_tau) * s.valid[c];
      V b = L::Exp((low_ijk - s.m_ijk[c]) * inv_tau) * s.valid[c];
      if (params.gumbel_noise) {
        const uint32_t q = static_cast<uint32_t>(c * kWidth);
        a *= L::Noise(q, noise.ij);
        b *= L::Noise(q, noise.ijk);
      }
      s.w_ij[c] = a;
      s.w_ijk[c] = b;
      sum_ij += a;
      sum_ijk += b;
      arg_ij.Update(a, c);
      arg_ijk.Update(b, c);
    }
    const int64_t l_ij = arg_ij.Index();
    const int64_t l_ijk = arg_ijk.Index();
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
    // that of the (ijk) weights is -G. Padding lanes have zero weight and so zero gradient.
    const T inv_sum_ij = T(1) / HorizontalSum(sum_ij);
    const T inv_sum_ijk = T(1) / HorizontalSum(sum_ijk);
    V dot_ij{}, dot_ijk{};
    for (int64_t c = 0; c < chunks; ++c) {
      const V g = c_i * Load<V>(d_i + c * kWidth) + c_j * Load<V>(d_j + c * kWidth) -
                  c_k * Load<V>(d_k + c * kWidth);
      dot_ij += s.w_ij[c] * g;
      dot_ijk += s.w_ijk[c] * g;
    }
    const T mean_ij = HorizontalSum(dot_ij) * inv_sum_ij;
    const T mean_ijk = HorizontalSum(dot_ijk) * inv_sum_ijk;
    const T coef_ij = -scale * inv_tau * inv_sum_ij;
    const T coef_ijk = -scale * inv_tau * inv_sum_ijk;
    for (int64_t c = 0; c < chunks; ++c) {
      const V di = Load<V>(d_i + c * kWidth), dj = Load<V>(d_j + c * kWidth);
      const V dk = Load<V>(d_k + c * kWidth);
      const V g = c_i * di + c_j * dj - c_k * dk;
      const V grad_m_ij = coef_ij * s.w_ij[c] * (g - mean_ij);      // d loss / d m_ij
      const V grad_m_ijk = coef_ijk * s.w_ijk[c] * (mean_ijk - g);  // d loss / d m_ijk
      const V total_ij = grad_m_ij + MaxShare<T>(s.m_ij[c], dk, grad_m_ijk);
      g_k[c] = MaxShare<T>(dk, s.m_ij[c], grad_m_ijk);
      g_i[c] = MaxShare<T>(di, dj, total_ij);
      g_j[c] = MaxShare<T>(dj, di, total_ij);
    }
    // Separate loops: rows may coincide (k == i for self-negatives).
    T* grad_i = grad + i * stride;
    T* grad_j = grad + j * stride;
    T* grad_k = grad + k * stride;
    for (int64_t c = 0; c < chunks; ++c) {
      Store(grad_i + c * kWidth, Load<V>(grad_i + c * kWidth) + g_i[c]);
    }
    for (int64_t c = 0; c < chunks; ++c) {
      Store(grad_j + c * kWidth, Load<V>(grad_j + c * kWidth) + g_j[c]);
    }
    for (int64_t c = 0; c < chunks; ++c) {
      Store(grad_k + c * kWidth, Load<V>(grad_k + c * kWidth) + g_k[c]);
    }
    // Direct terms: the distances to the two selected proxies.
    grad_i[l_ij] += scale * c_i;
    grad_i[l_ijk] -= scale * c_i;
    grad_j[l_ij] += scale * c_j;
    grad_j[l_ijk] -= scale * c_j;
    grad_k[l_ijk] += scale * c_k;
    grad_k[l_ij] -= scale * c_k;
  }
}

// Compiled twice: for AVX2 with FMA, and for the baseline ISA; dispatched once on the running CPU.
template <typename T>
__attribute__((target("avx2,fma"))) void KernelAvx2Fma(const T* dist, const int64_t* anchors,
                                                       const int64_t* positives,
                                                       const int64_t* negatives, int64_t begin,
                                                       int64_t end,
                                                       const HierTripletKernelParams& params,
                                                       const HierTripletOutputs& out, T* grad) {
  KernelBody(dist, anchors, positives, negatives, begin, end, params, out, grad);
}

template <typename T>
void KernelBaseline(const T* dist, const int64_t* anchors, const int64_t* positives,
                    const int64_t* negatives, int64_t begin, int64_t end,
                    const HierTripletKernelParams& params, const HierTripletOutputs& out, T* grad) {
  KernelBody(dist, anchors, positives, negatives, begin, end, params, out, grad);
}

template <typename T>
void Dispatch(const T* dist, const int64_t* anchors, const int64_t* positives,
              const int64_t* negatives, int64_t begin, int64_t end,
              const HierTripletKernelParams& params, const HierTripletOutputs& out, T* grad) {
  static const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  (avx2_fma ? KernelAvx2Fma<T> : KernelBaseline<T>)(dist, anchors, positives, negatives, begin, end,
                                                    params, out, grad);
}

}  // namespace

void HierTripletKernel(const float* dist, const int64_t* anchors, const int64_t* positives,
                       const int64_t* negatives, int64_t begin, int64_t end,
                       const HierTripletKernelParams& params, const HierTripletOutputs& out,
                       float* grad) {
  Dispatch(dist, anchors, positives, negatives, begin, end, params, out, grad);
}

void HierTripletKernel(const double* dist, const int64_t* anchors, const int64_t* positives,
                       const int64_t* negatives, int64_t begin, int64_t end,
                       const HierTripletKernelParams& params, const HierTripletOutputs& out,
                       double* grad) {
  Dispatch(dist, anchors, positives, negatives, begin, end, params, out, grad);
}

}  // namespace hier::core
