// Branch-free exp/log and a counter-based random hash, written once for scalars and for GCC vector
// types (8 x float): the HIER triplet kernel runs them over 10^7 lanes per training step.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace hier::core {

// Eight float lanes, and their integer counterparts (comparisons yield IntX8 masks of 0 / -1).
typedef float FloatX8 __attribute__((vector_size(32)));
typedef int32_t IntX8 __attribute__((vector_size(32)));
typedef uint32_t UintX8 __attribute__((vector_size(32)));

template <typename To, typename From>
inline To BitCast(From from) {
  static_assert(sizeof(To) == sizeof(From), "BitCast needs equal sizes");
  To to;
  std::memcpy(&to, &from, sizeof(to));
  return to;
}

inline int32_t ToInt(float x) { return static_cast<int32_t>(x); }
inline IntX8 ToInt(FloatX8 x) { return __builtin_convertvector(x, IntX8); }
inline float ToFloat(int32_t x) { return static_cast<float>(x); }
inline FloatX8 ToFloat(IntX8 x) { return __builtin_convertvector(x, FloatX8); }
template <typename F>
struct IntOf;
template <>
struct IntOf<float> {
  using Int = int32_t;
  using Uint = uint32_t;
};
template <>
struct IntOf<FloatX8> {
  using Int = IntX8;
  using Uint = UintX8;
};

// exp(x) for x in [-87, 88] with a relative error below 3e-7 (Cody-Waite reduction and a degree-6
// polynomial); smaller inputs give exp(-87) instead of a denormal.
template <typename F>
inline F FastExp(F x) {
  x = x < -87.0f ? F{} - 87.0f : x;
  x = x > 88.0f ? F{} + 88.0f : x;
  // Round to nearest by adding and removing 1.5 * 2^23.
  const F n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  F r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const F r2 = r * r;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const F y = p * r2 + r + 1.0f;
  return y * BitCast<F>((ToInt(n) + 127) << 23);
}

// log(x) for normal positive x with a relative error below 5e-7: the mantissa is reduced to
// 1 + m with m in [sqrt(1/2) - 1, sqrt(2) - 1] and log(1 + m) = m - m^2/2 + m^3 Q(m), Q a degree-5
// least-squares fit of relative error (2.9e-7 before float rounding).
template <typename F>
inline F FastLog(F x) {
  using Int = typename IntOf<F>::Int;
  const Int bits = BitCast<Int>(x);
  F e = ToFloat(((bits >> 23) & 0xff) - 126);
  F m = BitCast<F>((bits & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
  const auto small = m < 0.707106781186547524f;
  e = small ? e - 1.0f : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const F z = m * m;
  F q = F{} - 0.10069388432057538f;
  q = q * m + 0.1598767285657572f;
  q = q * m - 0.17154997119542623f;
  q = q * m + 0.1992809889124114f;
  q = q * m - 0.24982550404346157f;
  q = q * m + 0.3333420918027809f;
  F y = q * m * z;
  y += -2.12194440e-4f * e;  // ln 2 = 0.693359375 - 2.12194440e-4, split for accuracy
  y += -0.5f * z;
  return m + y + 0.693359375f * e;
}

// A bijective 32-bit integer hash with good avalanche ("lowbias32").
template <typename U>
inline U Hash32(U x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// SplitMix64 finaliser: turns (seed, stream) pairs into well-mixed 64-bit keys.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// SplitMix64 (Steele, Lea and Flood, 2014) as a sequential generator: tiny, fully specified and the
// same numbers on every platform, which std::*_distribution does not promise.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    const uint64_t out = Mix64(state_);
    state_ += 0x9e3779b97f4a7c15ull;
    return out;
  }
  // Uniform in [0, 1), from the top 53 bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [low, high).
  double Uniform(double low, double high) { return low + (high - low) * Uniform(); }

 private:
  uint64_t state_;
};

// Uniform in (0, 1), never 0 or 1, from the top 23 of 32 random bits: (k + 0.5) / 2^23. With 23
// bits k + 0.5 is exact in float and the largest value is 1 - 2^-24; with 24 bits the top k would
// round to 1 and its Gumbel factor to infinity.
template <typename U>
inline auto UniformFromBits(U bits) {
  using F = std::conditional_t<std::is_same_v<U, UintX8>, FloatX8, float>;
  using Int = typename IntOf<F>::Int;
  return (ToFloat(BitCast<Int>(bits >> 9)) + 0.5f) * (1.0f / 8388608.0f);
}

// 1 / E with E ~ Exponential(1) from 32 random bits, i.e. exp(g) for a Gumbel(0, 1) draw
// g = -log(E).
template <typename U>
inline auto ExpGumbelFromBits(U bits) {
  return -1.0f / FastLog(UniformFromBits(bits));
}

// A counter-based stream of random numbers: value i depends only on (key, i), so draws are the
// same whatever the thread count or order of evaluation.
struct CounterRng {
  uint64_t key;

  uint32_t Bits(uint32_t counter) const {
    return Hash32(Hash32(counter ^ static_cast<uint32_t>(key)) + static_cast<uint32_t>(key >> 32));
  }
};

// The Gumbel noise of one HIER triplet: two independent 32-bit stream keys per (key, triplet),
// one per LCA choice; proxy q of a stream draws from Hash32(q ^ stream). One hash per draw keeps
// the noise cheap, and the per-triplet keys keep the streams of different triplets unrelated.
struct TripletNoise {
  uint32_t ij;
  uint32_t ijk;

  static TripletNoise For(uint64_t key, uint64_t triplet) {
    const uint64_t k = Mix64(key ^ Mix64(triplet));
    return {static_cast<uint32_t>(k), static_cast<uint32_t>(k >> 32)};
  }
  // exp(Gumbel) for proxy (or proxies) q of a stream.
  template <typename U>
  static auto ExpGumbel(U q, uint32_t stream) {
    return ExpGumbelFromBits(Hash32(q ^ stream));
  }
};

}  // namespace hier::core
