// attention: flash-style fused softmax(Q K^T * scale + mask) V on the CPU, float32/float64.
//
// Algorithm (FlashAttention-2 on a CPU). Scores are kept in log2 units (q pre-scaled by
// scale * log2 e) so the softmax needs only exp2. Forward: one task per block of BQ = 64
// queries of one batch item (OpenMP, dynamic schedule over items x query blocks, the most
// expensive causal blocks first). It packs its queries transposed (Q^T, D x BQ), then
// sweeps key blocks of BK = 64: S^T = K Q^T (a register-blocked FMA micro-kernel that
// broadcasts K straight from the caller's array: no copy of K or V), causal/explicit
// masks, an online softmax kept as vectors over the queries (running max m, running sum
// l), and O^T = alpha * O^T + V^T P^T (same micro-kernel; the rescale alpha = 2^(m_old -
// m_new) is folded into the tile store). Output O = O^T / l, lse = m ln 2 + ln l. Memory
// per thread O(BQ * (D + BK + Dv)); no Tq x Tk matrix anywhere.
// Backward: Delta = rowsum(dO * O) first; then per (query block, key block) tile
// P = 2^(S - lse) is recomputed, dP^T = V dO^T, dS = P * (dP - Delta), dV += P^T dO,
// dK += dS^T Q, dQ += dS K. One task per batch item when the items share out evenly
// across the threads (dK/dV per key block in order, dQ in a per-thread Tq x D buffer);
// otherwise a sweep over key blocks for dK/dV and one over query blocks for dQ
// (recomputing P and dS). Every output element is a fixed-order sum, so results do not
// depend on the thread count (bit-identical for 1, 2, ... threads and both schedules).
// Causal: tiles past the diagonal are never visited, and inside diagonal tiles the
// micro-kernel skips every product whose factor is a causal zero, so causal costs ~half.
// Fully masked rows: out = NaN (like PyTorch), lse = -inf, no gradient contribution.
//
// Cost (n = B*H items, Tq x Tk scores, D = Dv): forward 4*n*Tq*Tk*D FLOPs + n*Tq*Tk exp2;
// backward 10*n*Tq*Tk*D FLOPs (2.5x) + n*Tq*Tk exp2; causal halves both. Bytes: forward
// reads Q once and K, V once per query block (2*Tk*D*4 * Tq/64 bytes, L2/L3 traffic) and
// writes O and lse once; backward reads Q, dO, K, V a few times per item, writes dQ, dK, dV.
//
// Versions (AMD EPYC, 2 vCPUs, AVX2; one thread, CPU time, n=2, T=1024, D=64, full):
//  1. Cephes exp, natural-log units, per-tile packing of Q/dO: fwd 63, bwd 68 GFLOP/s.
//  2. exp2 in log2 units (13 instead of 20 vector ops per exp), rescale folded into the
//     O^T store, per-item packing and unpadded row operands used in place: fwd 78-80,
//     bwd 80-83 GFLOP/s = 82-87% of the same micro-kernel on bare 64^3 blocks (95).
//     Tile sizes BQ, BK in {32..128} and a 4 x 24 micro-kernel measured within noise.
//  3. Causal band skipping inside diagonal tiles (saves ~half of them: ~10% of causal
//     work at T=512, ~3% at T=2048; the machine was too loaded to resolve it).
// Against PyTorch 2.13 CPU (F.scaled_dot_product_attention, same process, medians, load
// average 2-6 from other jobs on 2 vCPUs): forward+backward causal 1.3-1.6x at
// B=1,H=12,T=2048,D=64 and 2.4x at B=4,H=8,T=512,D=64; full 1.1-1.4x. benchmarks/RESULTS.md.
//
// Per ISA (run-time choice through active_isa()): attention_impl.h instantiated in
// attention_avx2.cpp and attention_avx512.cpp (own -m flags); this file holds the portable
// instantiation and the dispatcher.
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
