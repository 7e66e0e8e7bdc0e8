// The layer norm kernels, written once over GCC/Clang vector extensions and compiled once
// per instruction set: layer_norm.cpp (portable, 16-byte vectors), layer_norm_avx2.cpp
// (-mavx2 -mfma, 32-byte), layer_norm_avx512.cpp (-mavx512f..., 64-byte). Each includer
// defines PYZEN_SIMD_BYTES and PYZEN_LN_NS, a namespace of its own, so the copies built
// with different flags never merge at link time. See layer_norm.cpp for the algorithm.
#if !defined(PYZEN_SIMD_BYTES) || !defined(PYZEN_LN_NS)
#error "define PYZEN_SIMD_BYTES and PYZEN_LN_NS before including layer_norm_impl.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernels/layer_norm.h"
#include "kernels/simd.h"
#include "parallel.h"

namespace pyzen::PYZEN_LN_NS {
namespace {

// Lane sums are flushed into a double every kBlock<T> elements: float32 adds at most
// kBlock / W terms per lane, so a row of any length keeps float32-sized rounding.
template <typename T>
constexpr int64_t kBlock = 64 * Simd<T>::W;

// Outputs larger than this bypass the caches (non-temporal stores): they would not stay
// cached anyway, and a streamed store skips the read-for-ownership of the line.
constexpr int64_t kStreamBytes = 8 << 20;

// Non-temporal store of a full vector to an address aligned to the vector size.
template <typename T, typename V>
inline void store_stream(T* p, V v) {
#if PYZEN_SIMD_BYTES == 64 && defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) _mm512_stream_ps(reinterpret_cast<float*>(p), (__m512)v);
  else _mm512_stream_pd(reinterpret_cast<double*>(p), (__m512d)v);
#elif PYZEN_SIMD_BYTES == 32 && defined(__AVX__)
  if constexpr (sizeof(T) == 4) _mm256_stream_ps(reinterpret_cast<float*>(p), (__m256)v);
  else _mm256_stream_pd(reinterpret_cast<double*>(p), (__m256d)v);
#elif PYZEN_SIMD_BYTES == 16 && defined(__SSE2__)
  if constexpr (sizeof(T) == 4) _mm_stream_ps(reinterpret_cast<float*>(p), (__m128)v);
  else _mm_stream_pd(reinterpret_cast<double*>(p), (__m128d)v);
#else
  store(p, v);
#endif
}

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Writes out[i] = f(i) for i in [0, n): scalar f for the unaligned head and the tail, vector
// f in between, streamed when kStream (the head makes the vector stores aligned).
template <bool kStream, typename T, typename FV, typename FS>
inline void write_row(T* out, int64_t n, FV fv, FS fs) {
  using vec = typename Simd<T>::vec;
  constexpr int64_t W = Simd<T>::W;
  int64_t i = 0;
  if constexpr (kStream) {
    const auto misalign = reinterpret_cast<uintptr_t>(out) % sizeof(vec);
    if (misalign % sizeof(T) == 0 && misalign != 0)
      for (int64_t head = std::min<int64_t>(n, (sizeof(vec) - misalign) / sizeof(T)); i < head; ++i) out[i] = fs(i);
  }
  const bool aligned = reinterpret_cast<uintptr_t>(out + i) % sizeof(vec) == 0;
  for (; i + W <= n; i += W) {
    if (kStream && aligned)
      store_stream(out + i, fv(i));
    else
      store(out + i, fv(i));
  }
  for (; i < n; ++i) out[i] = fs(i);
}

template <typename V>
inline double hsum(V v) {
  double s = 0;
  for (size_t i = 0; i < sizeof(V) / sizeof(v[0]); ++i) s += v[i];
  return s;
}

constexpr int64_t kGrain = 1 << 15;  // elements below which one thread does all the rows

// sum_i f(x[i]) for f written once for vectors and scalars (a generic lambda).
template <typename T, typename F>
inline double row_sum(const T* x, int64_t n, F f) {
  using S = Simd<T>;
  using vec = typename S::vec;
  constexpr int64_t W = S::W;
  double total = 0;
  int64_t i = 0;
  while (i + W <= n) {  // four accumulators hide the add latency
    vec a0{}, a1{}, a2{}, a3{};
    const int64_t stop = std::min(n, i + kBlock<T>);
    for (; i + 4 * W <= stop; i += 4 * W) {
      a0 += f(load<vec>(x + i));
      a1 += f(load<vec>(x + i + W));
      a2 += f(load<vec>(x + i + 2 * W));
      a3 += f(load<vec>(x + i + 3 * W));
    }
    for (; i + W <= stop; i += W) a0 += f(load<vec>(x + i));
    total += hsum((a0 + a1) + (a2 + a3));
  }
  T tail = 0;
  for (; i < n; ++i) tail += f(x[i]);
  return total + tail;
}

// Shifted two-pass statistics: d = x - x[0] is exact for the nearly-constant rows where
// E[x^2] - E[x]^2 would cancel, and the second pass sums (d - mean(d))^2.
template <typename T, bool kW, bool kB, bool kStream>
void forward_rows(const LayerNormForwardArgs<T>& a, int64_t r0, int64_t r1) {
  using vec = typename Simd<T>::vec;
  const int64_t C = a.cols;
  for (int64_t r = r0; r < r1; ++r) {
    const T* x = a.x + r * C;
    T* out = a.out + r * C;
    if (C == 0) {  // mean of nothing, like NumPy
      a.mean[r] = a.rstd[r] = std::numeric_limits<T>::quiet_NaN();
      continue;
    }
    if (r + 1 < r1)  // start the next row's DRAM reads while this row is computed in cache
      for (int64_t k = 0; k < C; k += 64 / int64_t(sizeof(T))) __builtin_prefetch(x + C + k);
    const T x0 = x[0];
    const double md = row_sum(x, C, [x0](auto v) { return v - x0; }) / double(C);
    const T mdt = T(md);
    const double var = row_sum(x, C, [x0, mdt](auto v) {
                         const auto e = (v - x0) - mdt;
                         return e * e;
                       }) / double(C);
    const double rs = 1.0 / std::sqrt(var + a.eps);
    a.mean[r] = T(double(x0) + md);
    a.rstd[r] = T(rs);
    const T rst = T(rs);
    auto y = [&](auto xv, int64_t i) {
      using V = decltype(xv);
      auto v = ((xv - x0) - mdt) * rst;
      if constexpr (kW) v = v * load<V>(a.weight + i);
      if constexpr (kB) v = v + load<V>(a.bias + i);
      return v;
    };
    write_row<kStream>(
        out, C, [&](int64_t i) { return y(load<vec>(x + i), i); }, [&](int64_t i) { return y(x[i], i); });
  }
  if constexpr (kStream) stream_fence();
}

template <typename T, bool kW, bool kB>
void forward_impl(const LayerNormForwardArgs<T>& a) {
  const int nt = get_num_threads();
  const bool stream = a.rows * a.cols * int64_t(sizeof(T)) > kStreamBytes;
#pragma omp parallel for num_threads(nt) schedule(static) if (a.rows * a.cols > kGrain)
  for (int64_t t = 0; t < nt; ++t) {
    if (stream)
      forward_rows<T, kW, kB, true>(a, a.rows * t / nt, a.rows * (t + 1) / nt);
    else
      forward_rows<T, kW, kB, false>(a, a.rows * t / nt, a.rows * (t + 1) / nt);
  }
}

template <typename T>
void forward_dispatch(const LayerNormForwardArgs<T>& a) {
  if (a.weight && a.bias) return forward_impl<T, true, true>(a);
  if (a.weight) return forward_impl<T, true, false>(a);
  if (a.bias) return forward_impl<T, false, true>(a);
  forward_impl<T, false, false>(a);
}

// Rows [r0, r1): dx, and this chunk's partial dweight/dbias added into pdw/pdb (cols each).
template <typename T, bool kW, bool kDW, bool kDB, bool kStream>
void backward_rows(const LayerNormBackwardArgs<T>& a, int64_t r0, int64_t r1, T* pdw, T* pdb) {
  using S = Simd<T>;
  using vec = typename S::vec;
  constexpr int64_t W = S::W;
  const int64_t C = a.cols;
  const T* w = a.weight;
  for (int64_t r = r0; r < r1; ++r) {
    const T* g = a.g + r * C;
    const T* x = a.x + r * C;
    T* dx = a.dx + r * C;
    const T rs = a.rstd[r];
    // xhat = ((x - shift) - mu) * rstd. The forward rounded the mean to T, an error of up to
    // |mean| eps / 2 that xhat magnifies by rstd (3% at mean 1e4, std 1e-3 in float32).
    // Where |mean| > 8 std (more than 4 ulps lost), recompute the mean as the forward does:
    // x[0] + mean(x - x[0]), both parts precise in T. One more pass, over such rows only.
    // An empty row has no x[0] (a caller's finite mean and rstd for it read past the end).
    T shift = a.mean[r], mu = 0;
    if (C > 0 && std::abs(double(shift)) * double(rs) > 8) {
      const T x0 = x[0];
      shift = x0;
      mu = T(row_sum(x, C, [x0](auto v) { return v - x0; }) / double(C));
    }
    // Pass 1: sum(gw), sum(gw * xhat), and the weight/bias gradient partials.
    double sa = 0, sb = 0;
    int64_t i = 0;
    while (i + W <= C) {
      vec aa{}, ab{};
      const int64_t stop = std::min(C, i + kBlock<T>);
      for (; i + W <= stop; i += W) {
        const vec gv = load<vec>(g + i);
        const vec xh = ((load<vec>(x + i) - shift) - mu) * rs;
        vec gw = gv;
        if constexpr (kW) gw = gv * load<vec>(w + i);
        aa += gw;
        ab += gw * xh;
        if constexpr (kDW) store(pdw + i, load<vec>(pdw + i) + gv * xh);
        if constexpr (kDB) store(pdb + i, load<vec>(pdb + i) + gv);
      }
      sa += hsum(aa);
      sb += hsum(ab);
    }
    T ta = 0, tb = 0;
    for (int64_t j = i; j < C; ++j) {
      const T xh = ((x[j] - shift) - mu) * rs;
      const T gw = kW ? g[j] * w[j] : g[j];
      ta += gw;
      tb += gw * xh;
      if constexpr (kDW) pdw[j] += g[j] * xh;
      if constexpr (kDB) pdb[j] += g[j];
    }
    const T ca = T((sa + ta) / double(C)), cb = T((sb + tb) / double(C));
    // Pass 2 (the row is in L1/L2 now): dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)).
    auto dxv = [&](auto gv, auto xv, int64_t i) {
      using V = decltype(gv);
      const auto xh = ((xv - shift) - mu) * rs;
      auto gw = gv;
      if constexpr (kW) gw = gv * load<V>(w + i);
      return ((gw - ca) - xh * cb) * rs;
    };
    write_row<kStream>(
        dx, C, [&](int64_t j) { return dxv(load<vec>(g + j), load<vec>(x + j), j); },
        [&](int64_t j) { return dxv(g[j], x[j], j); });
  }
  if constexpr (kStream) stream_fence();
}

template <typename T, bool kW, bool kDW, bool kDB>
void backward_impl(const LayerNormBackwardArgs<T>& a) {
  const int64_t R = a.rows, C = a.cols;
  // A fixed row partition (it depends on the shape only): at most 256 chunks of >= 32 rows.
  const int64_t nchunks = R == 0 ? 0 : std::clamp<int64_t>((R + 31) / 32, 1, 256);
  const int64_t per = nchunks ? (R + nchunks - 1) / nchunks : 0;
  std::vector<T> pdw(kDW ? nchunks * C : 0), pdb(kDB ? nchunks * C : 0);
  const int nt = get_num_threads();
#pragma omp parallel num_threads(nt) if (R * C > kGrain)
  {
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < nchunks; ++ch) {
      const int64_t r0 = std::min(R, ch * per), r1 = std::min(R, r0 + per);
      T* cw = kDW ? pdw.data() + ch * C : nullptr;
      T* cbias = kDB ? pdb.data() + ch * C : nullptr;
      if (R * C * int64_t(sizeof(T)) > kStreamBytes)
        backward_rows<T, kW, kDW, kDB, true>(a, r0, r1, cw, cbias);
      else
        backward_rows<T, kW, kDW, kDB, false>(a, r0, r1, cw, cbias);
    }
    // Reduce the chunk partials column by column, always in chunk order.
    if constexpr (kDW || kDB) {
#pragma omp for schedule(static)
      for (int64_t j = 0; j < C; ++j) {
        double sw = 0, sbias = 0;
        for (int64_t ch = 0; ch < nchunks; ++ch) {
          if constexpr (kDW) sw += pdw[ch * C + j];
          if constexpr (kDB) sbias += pdb[ch * C + j];
        }
        if constexpr (kDW) a.dweight[j] = T(sw);
        if constexpr (kDB) a.dbias[j] = T(sbias);
      }
    }
  }
}

template <typename T>
void backward_dispatch(const LayerNormBackwardArgs<T>& a) {
  const bool w = a.weight != nullptr, dw = a.dweight != nullptr, db = a.dbias != nullptr;
  if (w && dw && db) return backward_impl<T, true, true, true>(a);
  if (w && dw) return backward_impl<T, true, true, false>(a);
  if (w && db) return backward_impl<T, true, false, true>(a);
  if (w) return backward_impl<T, true, false, false>(a);
  if (db) return backward_impl<T, false, false, true>(a);
  backward_impl<T, false, false, false>(a);
}

}  // namespace

void forward(const LayerNormForwardArgs<float>& a) { forward_dispatch(a); }
void forward(const LayerNormForwardArgs<double>& a) { forward_dispatch(a); }
void backward(const LayerNormBackwardArgs<float>& a) { backward_dispatch(a); }
void backward(const LayerNormBackwardArgs<double>& a) { backward_dispatch(a); }

}  // namespace pyzen::PYZEN_LN_NS
