// attention: flash-style fused softmax(Q K^T * scale + mask) V on the CPU, float32/float64.
//
// Algorithm (FlashAttention-2 on a CPU). Forward: each task owns one block of BQ queries of
// one batch item (OpenMP, dynamic schedule over batch x query blocks). It packs its queries
// transposed and pre-scaled (Q^T, D x BQ), then sweeps key blocks of BK: S^T = K Q^T (a
// register-blocked FMA micro-kernel that broadcasts K straight from the caller's array),
// causal/explicit masks, an online softmax kept as vectors over the queries (running max
// m, running sum l, rescale alpha = exp(m_old - m_new)), and O^T = alpha * O^T + V^T P^T
// (same micro-kernel, V broadcast in place). Output O = O^T / l, lse = m + log l. Memory:
// O(BQ * (D + BK + Dv)) per thread; no Tq x Tk matrix. Causal: key blocks past the
// diagonal are never visited, so causal costs about half.
// Backward: Delta = rowsum(dO * O) first; then for a (query block, key block) tile,
// P = exp(S - lse) is recomputed, dP^T = V dO^T, dS = P * (dP - Delta), dV += P^T dO,
// dK += dS^T Q, dQ += dS K. One task per batch item when the items share out evenly
// across the threads (dK/dV per key block in order, dQ in a per-thread Tq x D buffer);
// otherwise a key-block sweep for dK/dV and a query-block sweep for dQ (recomputing P, dS).
// Every output element is a fixed-order sum, so results do not depend on the thread count
// (bit-identical across 1, 2, ... threads and across both backward schedules).
// Fully masked rows: out = NaN (like PyTorch), lse = -inf, no gradient contribution.
//
// Cost (B*H = n items, Tq x Tk scores, head dim D = Dv): forward 4*n*Tq*Tk*D FLOPs + n*Tq*Tk
// exps; backward 10*n*Tq*Tk*D FLOPs (2.5x) + n*Tq*Tk exps; causal halves both. Bytes:
// forward reads Q once and K, V once per query block (Tq/BQ times, from L2/L3: 2*Tk*D*4*Tq/64
// bytes), writes O and lse once; backward reads Q, dO once per key block.
//
// Per ISA (run-time choice through active_isa(), attention_impl.h compiled per ISA):
// attention_avx2.cpp, attention_avx512.cpp; this file holds the portable instantiation.
//
// Measured: see benchmarks/RESULTS.md (attention) -- filled in below after tuning.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "cpu_features.h"
#include "kernels/attention_impl.h"
#include "parallel.h"

namespace pyzen {
namespace {

inline float sexp2(float x) { return std::exp2(x); }
inline double sexp2(double x) { return std::exp2(x); }

// Portable "vector" of one element: the same algorithm with scalar code.
template <typename T>
struct ScalarVec {
  using scalar = T;
  using reg = T;
  static constexpr int width = 1;
  static constexpr T lowest = -static_cast<T>(sizeof(T) == 4 ? 3.40282346638528859812e+38
                                                              : 1.79769313486231570815e+308);
  static T zero() { return T(0); }
  static T load(const T* p) { return *p; }
  static void store(T* p, T v) { *p = v; }
  static T broadcast(T x) { return x; }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T max(T a, T b) { return a > b ? a : b; }
  static T exp2(T x) { return sexp2(x); }
};

template <typename T>
using ScalarFlash = attn::Flash<ScalarVec<T>, 4, 4, 32, 64>;

// Enough score entries per thread that starting a team pays for itself.
template <typename T>
int threads_for(const AttentionArgs<T>& a) {
  const double work = static_cast<double>(a.n) * a.tq * a.tk * (a.d + a.dv + 1);
  return static_cast<int>(std::max(1.0, std::min<double>(get_num_threads(), work / (1 << 18))));
}

template <typename T>
void forward_impl(const AttentionArgs<T>& a) {
  const int nt = threads_for(a);
#ifdef PYZEN_X86_KERNELS
  switch (active_isa()) {
    case Isa::avx512: return attention_detail::forward_avx512(a, nt);
    case Isa::avx2: return attention_detail::forward_avx2(a, nt);
    case Isa::scalar: break;
  }
#endif
  ScalarFlash<T>(a).forward(nt);
}

template <typename T>
void backward_impl(const AttentionArgs<T>& a) {
  const int nt = threads_for(a);
#ifdef PYZEN_X86_KERNELS
  switch (active_isa()) {
    case Isa::avx512: return attention_detail::backward_avx512(a, nt);
    case Isa::avx2: return attention_detail::backward_avx2(a, nt);
    case Isa::scalar: break;
  }
#endif
  ScalarFlash<T>(a).backward(nt);
}

}  // namespace

void attention_forward(const AttentionArgs<float>& a) { forward_impl(a); }
void attention_forward(const AttentionArgs<double>& a) { forward_impl(a); }
void attention_backward(const AttentionArgs<float>& a) { backward_impl(a); }
void attention_backward(const AttentionArgs<double>& a) { backward_impl(a); }

}  // namespace pyzen
