// Branch-free float exp/log and a counter-based random hash that compilers vectorise; used by the
// HIER triplet kernel, where 10^7 exponentials and Gumbel draws per step dominate the cost.
#pragma once

#include <cstdint>
#include <cstring>

namespace hier::core {

inline float BitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline uint32_t FloatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

// exp(x) for x in [-87, 88] with a relative error below 3e-7 (Cody-Waite reduction and a degree-6
// polynomial); smaller inputs return exp(-87) instead of a denormal.
inline float FastExp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r2 + r + 1.0f;
  const uint32_t scale = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  return y * BitsToFloat(scale);
}

// log(x) for normal positive x with a relative error below 3e-7 (mantissa reduced to
// [sqrt(1/2), sqrt(2)) and a degree-9 polynomial).
inline float FastLog(float x) {
  const uint32_t bits = FloatToBits(x);
  float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 126);
  float m = BitsToFloat((bits & 0x007fffffu) | 0x3f000000u);  // in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1.0f : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  return m + y + 0.693359375f * e;
}

// A bijective 32-bit integer hash with good avalanche ("lowbias32"); vectorises as 32-bit lanes.
inline uint32_t Hash32(uint32_t x) {
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

// A counter-based stream of random numbers: value i depends only on (key, i), so draws are the
// same whatever the thread count or order of evaluation.
struct CounterRng {
  uint64_t key;

  uint32_t Bits(uint32_t counter) const {
    return Hash32(Hash32(counter ^ static_cast<uint32_t>(key)) + static_cast<uint32_t>(key >> 32));
  }
  // Uniform in (0, 1), never exactly 0 or 1: (k + 0.5) / 2^24.
  float Uniform(uint32_t counter) const {
    return (static_cast<float>(Bits(counter) >> 8) + 0.5f) * (1.0f / 16777216.0f);
  }
  // 1 / E with E ~ Exponential(1): exp(g) for a Gumbel(0, 1) draw g = -log(E).
  float ExpGumbel(uint32_t counter) const { return -1.0f / FastLog(Uniform(counter)); }
};

}  // namespace hier::core
