// The cross-entropy kernels, written once over GCC/Clang vector extensions and compiled once
// per instruction set (cross_entropy.cpp: portable 16-byte vectors; cross_entropy_avx2.cpp;
// cross_entropy_avx512.cpp), each copy in its own namespace PYZEN_CE_NS. Algorithm and
// measurements: cross_entropy.cpp.
#if !defined(PYZEN_SIMD_BYTES) || !defined(PYZEN_CE_NS)
#error "define PYZEN_SIMD_BYTES and PYZEN_CE_NS before including cross_entropy_impl.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cross_entropy.h"
#include "kernels/simd.h"
#include "parallel.h"

namespace pyzen::PYZEN_CE_NS {
namespace {

using vf = Simd<float>::vec;
using vd = Simd<double>::vec;
typedef int32_t vi32 __attribute__((vector_size(PYZEN_SIMD_BYTES)));
typedef int64_t vi64 __attribute__((vector_size(PYZEN_SIMD_BYTES)));

template <typename To, typename From>
inline To bits(From v) {
  static_assert(sizeof(To) == sizeof(From));
  To t;
  std::memcpy(&t, &v, sizeof t);
  return t;
}

template <typename V>
inline V splat(decltype(V{}[0]) x) {
  return V{} + x;
}

template <typename V>
inline double hsum(V v) {
  double s = 0;
  for (size_t i = 0; i < sizeof(V) / sizeof(v[0]); ++i) s += v[i];
  return s;
}

template <typename V>
inline auto hmax(V v) {
  auto m = v[0];
  for (size_t i = 1; i < sizeof(V) / sizeof(v[0]); ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// exp(x), float lanes: x = n ln2 + r with |r| <= ln2/2, Cephes' degree-6 polynomial for
// e^r, 2^n built in the exponent bits (n rounded with the 1.5 * 2^23 trick). Results below
// e^-87 are flushed to 0; x > 88 is clamped. ~2 ulp.
inline vf vexp(vf x) {
  const vf lo = splat<vf>(-87.0f), hi = splat<vf>(88.0f), magic = splat<vf>(12582912.0f);
  vf xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const vf t = xc * 1.44269504088896341f + magic;
  const vf n = t - magic;
  vf r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = splat<vf>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const vf y = (p * (r * r) + r) + 1.0f;
  const vi32 e = (bits<vi32>(t) - bits<vi32>(magic) + 127) << 23;
  const vf out = y * bits<vf>(e);
  return x < lo ? vf{} : out;
}

// exp(x), double lanes: the same reduction, degree-13 Taylor polynomial (error < 1e-17 on
// |r| <= ln2/2), n rounded with 1.5 * 2^52. Flushed to 0 below e^-708, clamped above 708.
inline vd vexp(vd x) {
  const vd lo = splat<vd>(-708.0), hi = splat<vd>(708.0), magic = splat<vd>(6755399441055744.0);
  vd xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const vd t = xc * 1.4426950408889634074 + magic;
  const vd n = t - magic;
  vd r = xc - n * 6.93145751953125e-1;
  r = r - n * 1.42860682030941723212e-6;
  constexpr double kInvFact[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                 1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
                                 1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        0.5,
                                 1.0};  // 1/13! .. 1/1!
  vd p = splat<vd>(kInvFact[0]);
  for (int k = 1; k < 13; ++k) p = p * r + kInvFact[k];
  const vd y = p * r + 1.0;
  const vi64 e = (bits<vi64>(t) - bits<vi64>(magic) + 1023) << 52;
  const vd out = y * bits<vd>(e);
  return x < lo ? vd{} : out;
}

constexpr int64_t kGrain = 1 << 15;  // elements below which one thread does all the rows

inline bool bad_target(int64_t t, int64_t classes) { return t < 0 || t >= classes; }

// One pass over the row: blocks of kBlock logits (L1-resident) give a block max; the
// running sum is rescaled only when the max grows, then e^(x - max) is summed over the
// block. Block sums go to a double. Returns (lse, sum of logits) in double and the row max.
// A row holding +inf gets lse = nan (e^(inf - inf)), so its loss and gradient are nan, like
// PyTorch's log_softmax; a row of only -inf gets lse = -inf.
template <typename T, bool kSmooth>
inline void row_lse(const T* x, int64_t C, double& lse, double& sumx, T& max) {
  using vec = typename Simd<T>::vec;
  constexpr int64_t W = Simd<T>::W;
  constexpr int64_t kBlock = 64 * W;
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  T m = kNegInf;
  double s = 0, sx = 0;
  for (int64_t b0 = 0; b0 < C; b0 += kBlock) {
    const int64_t n = std::min(kBlock, C - b0);
    const T* xb = x + b0;
    vec mv = splat<vec>(kNegInf);
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const vec v = load<vec>(xb + i);
      mv = v > mv ? v : mv;
    }
    T bm = hmax(mv);
    for (; i < n; ++i) bm = xb[i] > bm ? xb[i] : bm;
    if (bm > m) {
      if (std::isfinite(m)) s *= std::exp(double(m) - double(bm));
      m = bm;
    }
    const T shift = m == kNegInf ? T(0) : m;  // all -inf so far: e^(x - 0) = 0, like NumPy
    vec acc{}, accx{};
    for (i = 0; i + W <= n; i += W) {
      const vec v = load<vec>(xb + i);
      acc += vexp(v - shift);
      if constexpr (kSmooth) accx += v;
    }
    double tail = 0, tailx = 0;
    for (; i < n; ++i) {
      tail += std::exp(double(xb[i] - shift));
      if constexpr (kSmooth) tailx += xb[i];
    }
    s += hsum(acc) + tail;
    if constexpr (kSmooth) sx += hsum(accx) + tailx;
  }
  const double shift = m == kNegInf ? 0.0 : double(m);
  lse = shift + std::log(s);
  sumx = sx;
  max = m;
}

template <typename T, bool kSmooth>
int64_t forward_impl(const CrossEntropyForwardArgs<T>& a) {
  const int64_t N = a.rows, C = a.classes;
  const double ls = a.label_smoothing;
  int64_t bad = N;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) reduction(min : bad) if (N * C > kGrain)
  for (int64_t r = 0; r < N; ++r) {
    const T* x = a.logits + r * C;
    double lse, sumx;
    T max;
    row_lse<T, kSmooth>(x, C, lse, sumx, max);
    a.lse[r] = T(lse);
    const int64_t t = a.target[r];
    if (t == a.ignore_index) {
      a.losses[r] = T(0);
    } else if (bad_target(t, C)) {
      a.losses[r] = std::numeric_limits<T>::quiet_NaN();
      bad = std::min(bad, r);
    } else {
      double loss = lse - double(x[t]);
      if constexpr (kSmooth) loss = (1.0 - ls) * loss + ls * (lse - sumx / double(C));
      a.losses[r] = T(loss);
    }
  }
  return bad == N ? -1 : bad;
}

// dlogits[r, j] = g[r] * (softmax_j - ls / C - (1 - ls) [j == target]), one pass per row.
template <typename T>
int64_t backward_impl(const CrossEntropyBackwardArgs<T>& a) {
  using vec = typename Simd<T>::vec;
  constexpr int64_t W = Simd<T>::W;
  const int64_t N = a.rows, C = a.classes;
  const T smooth = T(a.label_smoothing / double(C)), hit = T(1.0 - a.label_smoothing);
  int64_t bad = N;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) reduction(min : bad) if (N * C > kGrain)
  for (int64_t r = 0; r < N; ++r) {
    const T* x = a.logits + r * C;
    T* d = a.dlogits + r * C;
    const int64_t t = a.target[r];
    if (t == a.ignore_index || bad_target(t, C)) {
      const T fill = t == a.ignore_index ? T(0) : std::numeric_limits<T>::quiet_NaN();
      std::fill(d, d + C, fill);
      if (t != a.ignore_index) bad = std::min(bad, r);
      continue;
    }
    const T g = a.g[r];
    // softmax = e^((x - shift) - rest). The forward rounded lse to T, which costs every
    // probability a relative error of up to |lse| eps / 2 (5e-4 at lse = 1e4 in float32).
    // Where that bound passes 2^-19 (|lse| > 32 in float32; never in practice in float64),
    // recompute lse as max + (lse - max), two terms T holds precisely: one more exp pass,
    // over such rows only.
    T shift = 0, rest = a.lse[r];
    if (std::isfinite(rest) && std::abs(double(rest)) * std::numeric_limits<T>::epsilon() > 0x1p-18) {
      double lse, sumx;
      row_lse<T, false>(x, C, lse, sumx, shift);
      rest = T(lse - double(shift));
    }
    int64_t i = 0;
    for (; i + W <= C; i += W) store(d + i, (vexp((load<vec>(x + i) - shift) - rest) - smooth) * g);
    for (; i < C; ++i) d[i] = (T(std::exp(double((x[i] - shift) - rest))) - smooth) * g;
    d[t] = ((T(std::exp(double((x[t] - shift) - rest))) - hit) - smooth) * g;
  }
  return bad == N ? -1 : bad;
}

}  // namespace

int64_t forward(const CrossEntropyForwardArgs<float>& a) {
  return a.label_smoothing != 0 ? forward_impl<float, true>(a) : forward_impl<float, false>(a);
}
int64_t forward(const CrossEntropyForwardArgs<double>& a) {
  return a.label_smoothing != 0 ? forward_impl<double, true>(a) : forward_impl<double, false>(a);
}
int64_t backward(const CrossEntropyBackwardArgs<float>& a) { return backward_impl(a); }
int64_t backward(const CrossEntropyBackwardArgs<double>& a) { return backward_impl(a); }

}  // namespace pyzen::PYZEN_CE_NS
