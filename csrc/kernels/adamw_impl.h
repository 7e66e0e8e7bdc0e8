// The AdamW kernel, written once over GCC/Clang vector extensions and compiled once per
// instruction set (adamw.cpp: portable 16-byte vectors; adamw_avx2.cpp; adamw_avx512.cpp),
// each copy in its own namespace PYZEN_ADAMW_NS. Algorithm and measurements: adamw.cpp.
#if !defined(PYZEN_SIMD_BYTES) || !defined(PYZEN_ADAMW_NS)
#error "define PYZEN_SIMD_BYTES and PYZEN_ADAMW_NS before including adamw_impl.h"
#endif

#include <cmath>
#include <cstring>

#if defined(__SSE2__) || defined(__AVX__)
#include <immintrin.h>
#endif

#include "kernels/adamw.h"
#include "kernels/simd.h"

namespace pyzen::PYZEN_ADAMW_NS {
namespace {

using vf = Simd<float>::vec;
using vd = Simd<double>::vec;

inline float vsqrt(float x) { return std::sqrt(x); }
inline double vsqrt(double x) { return std::sqrt(x); }
// Vector square roots: the ISA's instruction where this copy is compiled for one (GCC has
// no generic vector sqrt), a lane loop otherwise.
inline vf vsqrt(vf x) {
#if PYZEN_SIMD_BYTES == 64 && defined(__AVX512F__)
  return _mm512_sqrt_ps(x);
#elif PYZEN_SIMD_BYTES == 32 && defined(__AVX__)
  return _mm256_sqrt_ps(x);
#elif PYZEN_SIMD_BYTES == 16 && defined(__SSE2__)
  return _mm_sqrt_ps(x);
#else
  for (size_t i = 0; i < sizeof(vf) / sizeof(float); ++i) x[i] = std::sqrt(x[i]);
  return x;
#endif
}
inline vd vsqrt(vd x) {
#if PYZEN_SIMD_BYTES == 64 && defined(__AVX512F__)
  return _mm512_sqrt_pd(x);
#elif PYZEN_SIMD_BYTES == 32 && defined(__AVX__)
  return _mm256_sqrt_pd(x);
#elif PYZEN_SIMD_BYTES == 16 && defined(__SSE2__)
  return _mm_sqrt_pd(x);
#else
  for (size_t i = 0; i < sizeof(vd) / sizeof(double); ++i) x[i] = std::sqrt(x[i]);
  return x;
#endif
}

// Per-tensor constants, computed in double and rounded to T once, like NumPy's scalars.
template <typename T>
struct Coef {
  T decay, wd, one_minus_b1, b2, one_minus_b2, step_size, bias2_sqrt, eps;
  Coef(const AdamwHyper& h, double step)
      : decay(T(1.0 - h.lr * h.weight_decay)),
        wd(T(h.weight_decay)),
        one_minus_b1(T(1.0 - h.beta1)),
        b2(T(h.beta2)),
        one_minus_b2(T(1.0 - h.beta2)),
        step_size(T(h.lr / (1.0 - std::pow(h.beta1, step)))),
        bias2_sqrt(T(std::sqrt(1.0 - std::pow(h.beta2, step)))),
        eps(T(h.eps)) {}
};

// The update, in the reference's operation order, for vectors or scalars (V = vec or T).
template <bool kDecay, bool kDecoupled, bool kMaximize, bool kAmsgrad, typename V, typename T>
inline void update(V& p, V g, V& m, V& v, V* vmax, const Coef<T>& c) {
  if constexpr (kMaximize) g = -g;
  if constexpr (kDecay) {
    if constexpr (kDecoupled)
      p = p * c.decay;
    else
      g = g + c.wd * p;
  }
  m = m + c.one_minus_b1 * (g - m);
  v = v * c.b2 + (c.one_minus_b2 * g) * g;
  V denom_src = v;
  if constexpr (kAmsgrad) {
    *vmax = *vmax > v ? *vmax : v;  // NaN in v propagates, like np.maximum
    denom_src = *vmax;
  }
  p = p - (c.step_size * m) / (vsqrt(denom_src) / c.bias2_sqrt + c.eps);
}

template <bool kDecay, bool kDecoupled, bool kMaximize, bool kAmsgrad, typename T>
void chunk(const AdamwTensor<T>& t, const Coef<T>& c, int64_t begin, int64_t end) {
  using vec = typename Simd<T>::vec;
  constexpr int64_t W = Simd<T>::W;
  int64_t i = begin;
  for (; i + W <= end; i += W) {
    vec p = load<vec>(t.param + i), m = load<vec>(t.exp_avg + i), v = load<vec>(t.exp_avg_sq + i);
    vec vmax = kAmsgrad ? load<vec>(t.max_exp_avg_sq + i) : vec{};
    update<kDecay, kDecoupled, kMaximize, kAmsgrad>(p, load<vec>(t.grad + i), m, v, &vmax, c);
    store(t.param + i, p);
    store(t.exp_avg + i, m);
    store(t.exp_avg_sq + i, v);
    if constexpr (kAmsgrad) store(t.max_exp_avg_sq + i, vmax);
  }
  for (; i < end; ++i) {
    T p = t.param[i], m = t.exp_avg[i], v = t.exp_avg_sq[i];
    T vmax = kAmsgrad ? t.max_exp_avg_sq[i] : T(0);
    update<kDecay, kDecoupled, kMaximize, kAmsgrad>(p, t.grad[i], m, v, &vmax, c);
    t.param[i] = p;
    t.exp_avg[i] = m;
    t.exp_avg_sq[i] = v;
    if constexpr (kAmsgrad) t.max_exp_avg_sq[i] = vmax;
  }
}

template <typename T>
void run_chunk(const AdamwTensor<T>& t, const AdamwHyper& h, int64_t begin, int64_t end) {
  const Coef<T> c(h, t.step);
  const bool decay = h.weight_decay != 0, ams = t.max_exp_avg_sq != nullptr;
  // 16 variants of the loop, so that no flag is tested per element.
  const int key = (decay ? 8 : 0) | (h.decoupled ? 4 : 0) | (h.maximize ? 2 : 0) | (ams ? 1 : 0);
  switch (key) {
#define PYZEN_ADAMW_CASE(k) \
  case k: return chunk<bool(k & 8), bool(k & 4), bool(k & 2), bool(k & 1)>(t, c, begin, end);
    PYZEN_ADAMW_CASE(0) PYZEN_ADAMW_CASE(1) PYZEN_ADAMW_CASE(2) PYZEN_ADAMW_CASE(3)
    PYZEN_ADAMW_CASE(4) PYZEN_ADAMW_CASE(5) PYZEN_ADAMW_CASE(6) PYZEN_ADAMW_CASE(7)
    PYZEN_ADAMW_CASE(8) PYZEN_ADAMW_CASE(9) PYZEN_ADAMW_CASE(10) PYZEN_ADAMW_CASE(11)
    PYZEN_ADAMW_CASE(12) PYZEN_ADAMW_CASE(13) PYZEN_ADAMW_CASE(14) PYZEN_ADAMW_CASE(15)
#undef PYZEN_ADAMW_CASE
  }
}

}  // namespace

void update_range(const AdamwTensor<float>& t, const AdamwHyper& h, int64_t begin, int64_t end) {
  run_chunk(t, h, begin, end);
}
void update_range(const AdamwTensor<double>& t, const AdamwHyper& h, int64_t begin, int64_t end) {
  run_chunk(t, h, begin, end);
}

}  // namespace pyzen::PYZEN_ADAMW_NS
