// GELU float32 kernels written once over GCC/Clang vector extensions and compiled once per
// instruction set: gelu.cpp (portable, 16-byte vectors), gelu_avx2.cpp (-mavx2 -mfma),
// gelu_avx512.cpp (-mavx512f). Each includer defines PYZEN_SIMD_BYTES and PYZEN_GELU_NS, a
// namespace of its own, so copies built with different flags never merge at link time.
//
// No libm calls, so every lane runs in vector registers: exp by range reduction (x = n ln2 + r)
// and a degree-6 polynomial on |r| <= ln2/2 (relative error ~2e-7); tanh(u) from
// exp(-2|u|); the normal CDF through Numerical Recipes' erfc Chebyshev fit (fractional
// error < 1.2e-7), both arranged so that the negative tail keeps its relative precision.
#if !defined(PYZEN_SIMD_BYTES) || !defined(PYZEN_GELU_NS)
#error "define PYZEN_SIMD_BYTES and PYZEN_GELU_NS before including gelu_impl.h"
#endif

#include <cstdint>
#include <cstring>

#include "kernels/simd.h"
#include "parallel.h"

namespace pyzen::PYZEN_GELU_NS {
namespace {

using vf = Simd<float>::vec;
typedef int32_t vi __attribute__((vector_size(PYZEN_SIMD_BYTES)));
constexpr int64_t W = Simd<float>::W;
constexpr int64_t kGrain = 1 << 15;  // elements per thread below which threads cost more than they save

constexpr float kSqrtHalf = 0.707106781f, kInvSqrt2Pi = 0.398942280f, kSqrt2OverPi = 0.797884561f, kCoeff = 0.044715f;

inline vf splat(float v) { return vf{} + v; }

inline vi splat_i(int32_t v) { return vi{} + v; }

inline vf select(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }

inline vf vabs(vf x) { return (vf)((vi)x & splat_i(0x7fffffff)); }

// e^x for x in [-87, 88]; smaller x flush to 0 (not e^-87: gelu's tails multiply it by a
// huge x), larger saturate.
inline vf vexp(vf x) {
  const vi tiny = x < -87.f;
  x = select(tiny, splat(-87.f), x);
  x = select(x > 88.f, splat(88.f), x);
  const vf n = __builtin_convertvector(__builtin_convertvector(x * 1.44269504f + select(x < 0.f, splat(-0.5f), splat(0.5f)), vi), vf);
  const vf r = x - n * 0.693145752f - n * 1.42860677e-6f;  // Cody-Waite: ln2 split in two
  vf p = splat(1.f / 720);
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  return select(tiny, splat(0.f), p * (vf)bits);
}

// 1 + tanh(u) and 1 - tanh(u) from t = e^(-2|u|): 2/(1+t) and 2t/(1+t), swapped for u < 0.
// No cancellation where tanh(u) is near -1 or 1.
inline void tanh_pair(vf u, vf& one_plus, vf& one_minus) {
  const vf t = vexp(-2.f * vabs(u));
  const vf big = 2.f / (1.f + t), small = big * t;
  one_plus = select(u < 0.f, small, big);
  one_minus = select(u < 0.f, big, small);
}

// Phi(x) = 1 + erf(x / sqrt 2) over 2, from erfc(|x| / sqrt 2) so that the left tail keeps
// its relative precision.
inline vf cdf(vf x) {
  const vf z = vabs(x) * kSqrtHalf;
  const vf t = 1.f / (1.f + 0.5f * z);
  vf p = splat(0.17087277f);
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const vf half_erfc = 0.5f * t * vexp(p - z * z);
  return select(x < 0.f, half_erfc, 1.f - half_erfc);
}

inline vf value(vf x, bool tanh_approx) {
  if (tanh_approx) {
    vf plus, minus;
    tanh_pair(kSqrt2OverPi * (x + kCoeff * x * x * x), plus, minus);
    return 0.5f * x * plus;
  }
  return x * cdf(x);
}

inline vf slope(vf x, bool tanh_approx) {
  if (tanh_approx) {
    vf plus, minus;  // 1 + tanh, 1 - tanh; 1 - tanh^2 is their product
    tanh_pair(kSqrt2OverPi * (x + kCoeff * x * x * x), plus, minus);
    return 0.5f * plus + 0.5f * x * plus * minus * kSqrt2OverPi * (1.f + 3 * kCoeff * x * x);
  }
  return cdf(x) + x * kInvSqrt2Pi * vexp(-0.5f * x * x);
}

// Full vectors, then the tail through a zero-padded vector, so every element takes the same path.
template <typename F>
inline void sweep(int64_t n, F f) {
#pragma omp parallel for num_threads(get_num_threads()) if (n > kGrain) schedule(static)
  for (int64_t i = 0; i < n / W; ++i) f(i * W, W);
  if (n % W) f(n - n % W, n % W);
}

}  // namespace

void forward(const float* x, float* out, int64_t n, bool tanh_approx) {
  sweep(n, [&](int64_t i, int64_t len) {
    if (len == W) return store(out + i, value(load<vf>(x + i), tanh_approx));
    float buf[W] = {};
    std::memcpy(buf, x + i, len * sizeof(float));
    store(buf, value(load<vf>(buf), tanh_approx));
    std::memcpy(out + i, buf, len * sizeof(float));
  });
}

void backward(const float* g, const float* x, float* dx, int64_t n, bool tanh_approx) {
  sweep(n, [&](int64_t i, int64_t len) {
    if (len == W) return store(dx + i, load<vf>(g + i) * slope(load<vf>(x + i), tanh_approx));
    float xb[W] = {}, gb[W] = {};
    std::memcpy(xb, x + i, len * sizeof(float));
    std::memcpy(gb, g + i, len * sizeof(float));
    store(xb, load<vf>(gb) * slope(load<vf>(xb), tanh_approx));
    std::memcpy(dx + i, xb, len * sizeof(float));
  });
}

}  // namespace pyzen::PYZEN_GELU_NS
