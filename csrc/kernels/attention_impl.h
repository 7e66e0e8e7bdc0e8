// The flash-attention algorithm, written once over a vector type V and compiled per ISA:
// attention.cpp (portable, V = one-element "vector"), attention_avx2.cpp, attention_avx512.cpp.
// See attention.cpp for the algorithm and its cost.
//
// V provides: scalar, reg, width, zero(), load(p), store(p, r), broadcast(x), fma(a, b, c)
// = a*b+c, add, sub, mul, max, exp2 (2^x for x <= 0; 0 below -127, so exp2(-inf) = 0), and
// lowest (the most negative finite scalar). Scores are kept in log2 units (q is pre-scaled
// by scale * log2(e)), so the softmax needs exp2, the cheapest exponential to vectorise.
// Layout convention: inside a tile the query index is the vector (column) dimension, so
// every softmax statistic (row max, row sum, lse, rowsum(dO*O)) is a vector.
//
// Everything here has internal linkage on purpose (anonymous namespace, no std:: templates,
// no calls to inline functions of other headers): this header is compiled with different
// -m flags in different files, and an inline function with external linkage could let the
// linker keep an AVX-512 copy for the portable code.
#pragma once

#include <cstdint>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/attention.h"
#include "kernels/scratch.h"

namespace {
namespace attn {

using pyzen::AttentionArgs;
using pyzen::AttnMask;
using pyzen::AttnRows;

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t round_up(int64_t a, int64_t b) { return cdiv(a, b) * b; }
inline float slog(float x) { return __builtin_logf(x); }
inline double slog(double x) { return __builtin_log(x); }
inline int thread_num() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

template <typename T>
inline const T* row(const AttnRows<T>& x, int64_t b, int64_t i) {
  return x.data + x.offset[b] + i * x.row_stride;
}


// Register-blocked micro-kernel: C[M x NV*W] (+)= sum_{k < kc} A(r, k) * B(k, :), with
// A(r, k) = a[r*ars + k*acs] broadcast from memory (any strides: a row-major matrix, its
// transpose, or a packed tile) and B(k, :) = the NV vectors at b + k*ldb. Sums from zero in
// registers and touches C once: C = acc, C + acc, or C * colscale + acc (colscale: one
// factor per column, the online softmax's rescale folded into the store).
template <class V, int M, int NV>
inline void ukernel(int64_t kc, const typename V::scalar* a, int64_t ars, int64_t acs,
                    const typename V::scalar* __restrict b, int64_t ldb,
                    typename V::scalar* __restrict c, int64_t ldc, bool accumulate,
                    const typename V::scalar* colscale) {
  using R = typename V::reg;
  constexpr int W = V::width;
  R acc[M][NV];
#pragma GCC unroll 16
  for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = V::zero();
  const typename V::scalar* ar[M];
#pragma GCC unroll 16
  for (int r = 0; r < M; ++r) ar[r] = a + r * ars;
  for (int64_t k = 0; k < kc; ++k) {
    R bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * W);
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r) {
      const R av = V::broadcast(ar[r][k * acs]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[r][j] = V::fma(av, bv[j], acc[r][j]);
    }
    b += ldb;
  }
  if (!accumulate) {
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) V::store(c + r * ldc + j * W, acc[r][j]);
  } else if (colscale != nullptr) {
    R cs[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) cs[j] = V::load(colscale + j * W);
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        typename V::scalar* cp = c + r * ldc + j * W;
        V::store(cp, V::fma(V::load(cp), cs[j], acc[r][j]));
      }
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) {
        typename V::scalar* cp = c + r * ldc + j * W;
        V::store(cp, V::add(V::load(cp), acc[r][j]));
      }
  }
}

template <class V, int M, int NV>
inline void ukernel_rows(int m, int64_t kc, const typename V::scalar* a, int64_t ars, int64_t acs,
                         const typename V::scalar* b, int64_t ldb, typename V::scalar* c,
                         int64_t ldc, bool accumulate, const typename V::scalar* colscale) {
  if constexpr (M > 1) {
    if (m < M)
      return ukernel_rows<V, M - 1, NV>(m, kc, a, ars, acs, b, ldb, c, ldc, accumulate, colscale);
  }
  ukernel<V, M, NV>(kc, a, ars, acs, b, ldb, c, ldc, accumulate, colscale);
}

// Causal structure of one diagonal tile, for gemm to skip products that are exactly zero.
// Key r and query c of the tile (tile coordinates) interact iff r - c <= delta.
enum class Band {
  none,
  rows_keys_cols_queries,  // C(key, query): micro-tiles with no live entry are set to 0
  cols_queries_k_keys,     // sum over keys for a query column chunk: stop after the last live key
  rows_keys_k_queries,     // sum over queries for a key row tile: start at the first live query
  rows_queries_k_keys,     // sum over keys for a query row tile: stop after the last live key
};

// C (rows x cols) (+)= A (rows x kc) . B (kc x cols); cols is a multiple of NR = NV * W
// (callers pad), rows is anything (the last row tile uses a shorter kernel). With a band,
// terms whose A or B factor is an exact causal zero are skipped (same result).
template <class V, int MR, int NV>
inline void gemm(int64_t rows, int64_t cols, int64_t kc, const typename V::scalar* a, int64_t ars,
                 int64_t acs, const typename V::scalar* b, int64_t ldb, typename V::scalar* c,
                 int64_t ldc, bool accumulate, const typename V::scalar* colscale = nullptr,
                 Band band = Band::none, int64_t delta = 0) {
  constexpr int NR = NV * V::width;
  for (int64_t c0 = 0; c0 < cols; c0 += NR)
    for (int64_t r0 = 0; r0 < rows; r0 += MR) {
      const int m = static_cast<int>(imin(MR, rows - r0));
      int64_t k0 = 0, k1 = kc;
      switch (band) {
        case Band::none: break;
        case Band::rows_keys_cols_queries:
          if (r0 - (c0 + NR - 1) > delta) {  // every key after every query: all zero
            for (int r = 0; r < m; ++r)
              for (int j = 0; j < NR; ++j) c[(r0 + r) * ldc + c0 + j] = typename V::scalar(0);
            continue;
          }
          break;
        case Band::cols_queries_k_keys: k1 = imax(0, imin(kc, delta + c0 + NR)); break;
        case Band::rows_keys_k_queries: k0 = imin(kc, imax(0, r0 - delta)); break;
        case Band::rows_queries_k_keys: k1 = imax(0, imin(kc, delta + r0 + m)); break;
      }
      ukernel_rows<V, MR, NV>(m, k1 - k0, a + r0 * ars + k0 * acs, ars, acs, b + k0 * ldb + c0, ldb,
                              c + r0 * ldc + c0, ldc, accumulate, colscale ? colscale + c0 : nullptr);
    }
}

// BQ queries x BK keys per tile; BQ is a multiple of the micro-kernel width NV * W.
template <class V, int MR, int NV, int BQ, int BK>
struct Flash {
  using T = typename V::scalar;
  using R = typename V::reg;
  static constexpr int W = V::width;
  static constexpr int NR = NV * W;
  static_assert(BQ % NR == 0, "query tile must be a multiple of the micro-kernel width");
  static constexpr double kLog2e = 1.44269504088896340736;
  static constexpr double kLn2 = 0.69314718055994530942;

  const AttentionArgs<T>& x;
  const int64_t D, Dv, Dp, Dvp;  // head dims, and rounded up to NR for row operands
  const int64_t nqb, tq_pad;     // query blocks, and tq rounded up to BQ
  const T qscale;                // scale * log2(e): scores in log2 units

  explicit Flash(const AttentionArgs<T>& args)
      : x(args), D(args.d), Dv(args.dv), Dp(round_up(imax(args.d, 1), NR)),
        Dvp(round_up(imax(args.dv, 1), NR)), nqb(cdiv(args.tq, BQ)), tq_pad(nqb * BQ),
        qscale(static_cast<T>(static_cast<double>(args.scale) * kLog2e)) {}

  static void gemm_(int64_t rows, int64_t cols, int64_t kc, const T* a, int64_t ars, int64_t acs,
                    const T* b, int64_t ldb, T* c, int64_t ldc, bool accumulate,
                    const T* colscale = nullptr, Band band = Band::none, int64_t delta = 0) {
    gemm<V, MR, NV>(rows, cols, kc, a, ars, acs, b, ldb, c, ldc, accumulate, colscale, band, delta);
  }

  // The tile's causal band: Band::none unless some key of the tile comes after some query.
  Band band(Band kind, int64_t q0, int64_t k0, int64_t nk) const {
    return x.causal && k0 + nk - 1 > q0 ? kind : Band::none;
  }

  // Tile (queries q0..q0+mq, keys k0..) has at least one causally unmasked entry.
  bool live(int64_t q0, int64_t mq, int64_t k0) const { return !x.causal || k0 < q0 + mq; }

  // Transposed block of BQ rows: XT[p*BQ + c] = s * x[b, q0 + c, p] for p < width, zero
  // for the padding columns c >= mq.
  static void pack_t(const AttnRows<T>& src, int64_t b, int64_t q0, int64_t mq, int64_t width,
                     T s, T* XT) {
    for (int64_t c = 0; c < mq; ++c) {
      const T* xr = row(src, b, q0 + c);
      for (int64_t p = 0; p < width; ++p) XT[p * BQ + c] = xr[p] * s;
    }
    for (int64_t p = 0; p < width; ++p)
      for (int64_t c = mq; c < BQ; ++c) XT[p * BQ + c] = T(0);
  }

  // Rows r0..r1 of item b as a micro-kernel B operand NR-padded to `padded` columns: the
  // caller's array itself when its width is already a multiple of NR (returns its row
  // stride), else a zero-padded copy in `scratch` indexed by absolute row.
  static const T* row_operand(const AttnRows<T>& src, int64_t b, int64_t r0, int64_t r1,
                              int64_t width, int64_t padded, T* scratch, int64_t* ld) {
    if (width == padded) {
      *ld = src.row_stride;
      return row(src, b, 0);
    }
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = row(src, b, r);
      T* d = scratch + r * padded;
      for (int64_t p = 0; p < width; ++p) d[p] = xr[p];
      for (int64_t p = width; p < padded; ++p) d[p] = T(0);
    }
    *ld = padded;
    return scratch;
  }

  // S^T = K Q^T for keys k0..k0+nk: S[r*BQ + c] = log2-scaled score of (query q0 + c,
  // key k0 + r), with the causal and explicit masks applied.
  void scores(const T* QT, T* S, int64_t b, int64_t q0, int64_t mq, int64_t k0, int64_t nk) const {
    gemm_(nk, BQ, D, row(x.k, b, k0), x.k.row_stride, 1, QT, BQ, S, BQ, false, nullptr,
          band(Band::rows_keys_cols_queries, q0, k0, nk), q0 - k0);
    const T ninf = -static_cast<T>(__builtin_inf());
    if (x.causal && k0 + nk - 1 > q0) {  // diagonal tile: key j > query i is masked
      for (int64_t r = 0; r < nk; ++r) {
        const int64_t cnt = imin(imax(k0 + r - q0, 0), BQ);
        for (int64_t c = 0; c < cnt; ++c) S[r * BQ + c] = ninf;
      }
    }
    if (x.mask_kind == AttnMask::boolean) {
      const uint8_t* m = static_cast<const uint8_t*>(x.mask) + x.mask_offset[b] + q0 * x.mask_rs +
                         k0 * x.mask_cs;
      for (int64_t c = 0; c < mq; ++c)
        for (int64_t r = 0; r < nk; ++r)
          if (!m[c * x.mask_rs + r * x.mask_cs]) S[r * BQ + c] = ninf;
    } else if (x.mask_kind == AttnMask::additive) {
      const T* m = static_cast<const T*>(x.mask) + x.mask_offset[b] + q0 * x.mask_rs + k0 * x.mask_cs;
      const T l2e = static_cast<T>(kLog2e);
      for (int64_t c = 0; c < mq; ++c)
        for (int64_t r = 0; r < nk; ++r) S[r * BQ + c] += m[c * x.mask_rs + r * x.mask_cs] * l2e;
    }
  }

  // ---- forward ------------------------------------------------------------------------
  int64_t fwd_scratch() const { return round_up(D * BQ, 16) + BK * BQ + Dv * BQ + 3 * BQ; }

  void forward_block(int64_t b, int64_t q0, T* buf) const {
    T* QT = buf;
    T* S = QT + round_up(D * BQ, 16);
    T* OT = S + BK * BQ;  // OT[d*BQ + c]: unnormalised output, transposed
    T* m = OT + Dv * BQ;  // running max, log2 units (never below lowest, so never -inf)
    T* l = m + BQ;        // running sum of 2^(s - m)
    T* alpha = l + BQ;    // rescale factor of this key block
    const int64_t mq = imin(BQ, x.tq - q0);
    pack_t(x.q, b, q0, mq, D, qscale, QT);
    for (int c = 0; c < BQ; ++c) m[c] = V::lowest, l[c] = T(0);
    if (x.tk == 0)
      for (int64_t i = 0; i < Dv * BQ; ++i) OT[i] = T(0);

    const int64_t kend = x.causal ? imin(x.tk, q0 + mq) : x.tk;
    for (int64_t k0 = 0; k0 < kend; k0 += BK) {
      const int64_t nk = imin(BK, kend - k0);
      scores(QT, S, b, q0, mq, k0, nk);
      // Online softmax, one vector of queries at a time.
      for (int cv = 0; cv < BQ; cv += W) {
        const R mo = V::load(m + cv);
        R mx = mo;
        for (int64_t r = 0; r < nk; ++r) mx = V::max(mx, V::load(S + r * BQ + cv));
        R sum = V::zero();
        for (int64_t r = 0; r < nk; ++r) {
          const R p = V::exp2(V::sub(V::load(S + r * BQ + cv), mx));
          V::store(S + r * BQ + cv, p);
          sum = V::add(sum, p);
        }
        const R al = V::exp2(V::sub(mo, mx));
        V::store(l + cv, V::fma(V::load(l + cv), al, sum));
        V::store(m + cv, mx);
        V::store(alpha + cv, al);
      }
      // OT = alpha * OT + V^T P^T: rows d, A(d, j) = v[k0 + j, d], B(j, :) = P of key j.
      gemm_(Dv, BQ, nk, row(x.v, b, k0), 1, x.v.row_stride, S, BQ, OT, BQ, k0 > 0, alpha,
            band(Band::cols_queries_k_keys, q0, k0, nk), q0 - k0);
    }
    const T ln2 = static_cast<T>(kLn2);
    for (int64_t c = 0; c < mq; ++c) {
      // l == 0: every key masked -> 0 * inf = NaN, like PyTorch; no keys at all -> 0.
      const T inv = x.tk > 0 ? T(1) / l[c] : T(0);
      T* o = x.out + (b * x.tq + q0 + c) * Dv;
      for (int64_t d = 0; d < Dv; ++d) o[d] = OT[d * BQ + c] * inv;
      x.lse[b * x.tq + q0 + c] = m[c] * ln2 + slog(l[c]);
    }
  }

  void forward(int threads) const {
    const int64_t tasks = x.n * nqb;
    if (tasks == 0) return;
    const int nt = static_cast<int>(imax(1, imin(threads, tasks)));
    const int64_t per = round_up(fwd_scratch(), 16);
    Scratch<T> buf(per * nt);
    // Dynamic schedule, most expensive (causal: last) query blocks first. Each task owns
    // its output rows, so the result does not depend on the schedule.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t t = 0; t < tasks; ++t)
      forward_block(t / nqb, (nqb - 1 - t % nqb) * BQ, buf.p + per * thread_num());
  }

  // ---- backward -----------------------------------------------------------------------
  // Per-thread workspace. QT/dOT: transposed query-side blocks (QT scaled to log2 units),
  // block qb at qb * D * BQ (resp. qb * Dv * BQ); Qpad/dOpad/Kpad: padded row copies, used
  // only when D or Dv is not a multiple of NR; dQ: the dQ accumulator rows.
  struct Work {
    T *QT, *dOT, *Qpad, *dOpad, *Kpad, *P, *dP, *dK, *dV, *dQ;
  };
  int64_t work_size(int64_t qblocks, int64_t dq_rows) const {
    const bool pad_d = D != Dp, pad_dv = Dv != Dvp;
    return round_up(qblocks * D * BQ, 16) + round_up(qblocks * Dv * BQ, 16) +
           (pad_d ? x.tq * Dp + x.tk * Dp : 0) + (pad_dv ? x.tq * Dvp : 0) + 2 * BK * BQ +
           BK * Dp + BK * Dvp + dq_rows * Dp + 64;
  }
  Work carve(T* p, int64_t qblocks) const {
    const bool pad_d = D != Dp, pad_dv = Dv != Dvp;
    Work w;
    w.QT = p, p += round_up(qblocks * D * BQ, 16);
    w.dOT = p, p += round_up(qblocks * Dv * BQ, 16);
    w.Qpad = p, p += pad_d ? x.tq * Dp : 0;
    w.Kpad = p, p += pad_d ? x.tk * Dp : 0;
    w.dOpad = p, p += pad_dv ? x.tq * Dvp : 0;
    w.P = p, p += BK * BQ;
    w.dP = p, p += BK * BQ;
    w.dK = p, p += BK * Dp;
    w.dV = p, p += BK * Dvp;
    w.dQ = p;
    return w;
  }

  // B operands of one item for the dK/dV (query rows) and dQ (key rows) products.
  struct Operands {
    const T *Q, *dO, *K;
    int64_t ldq, lddo, ldk;
  };

  // One (query block, key block) tile of the backward pass: recompute P = 2^(S - L), then
  // dP^T = V dO^T and dS = P * (dP - Delta); add P^T dO and dS^T Q to the key block's dV, dK
  // (when dkdv) and dS K to the query block's dQ rows (when dq != nullptr). QT, dOT: this
  // query block's transposed tiles; L, Dl: its padded row stats.
  void tile(int64_t b, int64_t k0, int64_t nk, int64_t q0, const T* QT, const T* dOT,
            const T* L, const T* Dl, const Operands& op, bool dkdv, T* dq, const Work& w) const {
    const int64_t mq = imin(BQ, x.tq - q0);
    scores(QT, w.P, b, q0, mq, k0, nk);
    // dP^T = V dO^T: rows = keys, A(j, d) = v[k0 + j, d].
    const int64_t delta = q0 - k0;
    gemm_(nk, BQ, Dv, row(x.v, b, k0), x.v.row_stride, 1, dOT, BQ, w.dP, BQ, false, nullptr,
          band(Band::rows_keys_cols_queries, q0, k0, nk), delta);
    for (int64_t r = 0; r < nk; ++r)
      for (int cv = 0; cv < BQ; cv += W) {
        const R p = V::exp2(V::sub(V::load(w.P + r * BQ + cv), V::load(L + cv)));
        V::store(w.P + r * BQ + cv, p);
        V::store(w.dP + r * BQ + cv, V::mul(p, V::sub(V::load(w.dP + r * BQ + cv), V::load(Dl + cv))));
      }
    if (dkdv) {
      const Band kq = band(Band::rows_keys_k_queries, q0, k0, nk);
      gemm_(nk, Dvp, mq, w.P, BQ, 1, op.dO + q0 * op.lddo, op.lddo, w.dV, Dvp, true, nullptr, kq,
            delta);  // dV += P^T dO
      gemm_(nk, Dp, mq, w.dP, BQ, 1, op.Q + q0 * op.ldq, op.ldq, w.dK, Dp, true, nullptr, kq,
            delta);  // dK += dS^T Q
    }
    if (dq != nullptr)  // dQ += dS K
      gemm_(mq, Dp, nk, w.dP, 1, BQ, op.K + k0 * op.ldk, op.ldk, dq, Dp, true, nullptr,
            band(Band::rows_queries_k_keys, q0, k0, nk), delta);
  }

  // Transposed tiles of query blocks [qb0, qb1) of item b, at their block index.
  void pack_query_blocks(int64_t b, int64_t qb0, int64_t qb1, const Work& w, int64_t slot0) const {
    for (int64_t qb = qb0; qb < qb1; ++qb) {
      const int64_t q0 = qb * BQ, mq = imin(BQ, x.tq - q0);
      pack_t(x.q, b, q0, mq, D, qscale, w.QT + (qb - slot0) * D * BQ);
      pack_t(x.g, b, q0, mq, Dv, T(1), w.dOT + (qb - slot0) * Dv * BQ);
    }
  }

  // dK, dV of key block k0 from all its live query blocks, in order; dQ contributions too
  // when dq (the item's tq_pad x Dp accumulator) is given.
  void key_block(int64_t b, int64_t k0, const T* L, const T* Dl, const Operands& op, T* dq,
                 const Work& w) const {
    const int64_t nk = imin(BK, x.tk - k0);
    for (int64_t i = 0; i < nk * Dp; ++i) w.dK[i] = T(0);
    for (int64_t i = 0; i < nk * Dvp; ++i) w.dV[i] = T(0);
    for (int64_t qb = x.causal ? k0 / BQ : 0; qb < nqb; ++qb) {
      const int64_t q0 = qb * BQ;
      if (!live(q0, imin(BQ, x.tq - q0), k0)) continue;
      tile(b, k0, nk, q0, w.QT + qb * D * BQ, w.dOT + qb * Dv * BQ, L + q0, Dl + q0, op, true,
           dq ? dq + q0 * Dp : nullptr, w);
    }
    for (int64_t r = 0; r < nk; ++r) {
      T* dk = x.dk + (b * x.tk + k0 + r) * D;
      T* dv = x.dvv + (b * x.tk + k0 + r) * Dv;
      for (int64_t p = 0; p < D; ++p) dk[p] = w.dK[r * Dp + p] * x.scale;
      for (int64_t d = 0; d < Dv; ++d) dv[d] = w.dV[r * Dvp + d];
    }
  }

  void store_dq(int64_t b, int64_t i0, int64_t rows, const T* acc) const {
    for (int64_t i = 0; i < rows; ++i) {
      T* dq = x.dq + (b * x.tq + i0 + i) * D;
      for (int64_t p = 0; p < D; ++p) dq[p] = acc[i * Dp + p] * x.scale;
    }
  }

  void backward(int threads) const {
    const int64_t n = x.n, tq = x.tq, tk = x.tk;
    if (n == 0) return;
    if (tq == 0 || tk == 0) {
      for (int64_t i = 0; i < n * tq * D; ++i) x.dq[i] = T(0);
      for (int64_t i = 0; i < n * tk * D; ++i) x.dk[i] = T(0);
      for (int64_t i = 0; i < n * tk * Dv; ++i) x.dvv[i] = T(0);
      return;
    }
    const int nkb = static_cast<int>(cdiv(tk, BK));
    const int nt = static_cast<int>(imax(1, imin(threads, n * imax(nqb, nkb))));
    // Per query row, padded to tq_pad with (+inf, 0): L = lse in log2 units (+inf where
    // the row is fully masked, so its P is 0) and Delta = rowsum(dO * O) (0 there: O is NaN).
    Scratch<T> rowstats(2 * n * tq_pad);
    T* Ls = rowstats.p;
    T* Ds = Ls + n * tq_pad;
    const T inf = static_cast<T>(__builtin_inf()), l2e = static_cast<T>(kLog2e);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < tq_pad; ++i) {
        T lse = inf, s = T(0);
        if (i < tq) {
          lse = row(x.lse_in, b, 0)[i * x.lse_in.row_stride];
          const T* gr = row(x.g, b, i);
          const T* orow = row(x.o, b, i);
          for (int64_t d = 0; d < Dv; ++d) s += gr[d] * orow[d];
        }
        const bool dead = lse == -inf || lse == inf;
        Ls[b * tq_pad + i] = dead ? inf : lse * l2e;
        Ds[b * tq_pad + i] = dead ? T(0) : s;
      }

    // One thread per batch item when the items share out evenly: dK, dV and dQ in one
    // sweep (5 products per tile). Otherwise two sweeps, over key blocks (dK, dV) and over
    // query blocks (dQ, recomputing P and dS: 7 products per tile). Both add every
    // output's terms in the same order, so the result is bit-identical either way.
    const bool per_item = nt == 1 || (n >= nt && (n % nt == 0 || n >= 4 * nt));
    if (per_item) {
      const int64_t per = round_up(work_size(nqb, tq_pad), 16);
      Scratch<T> buf(per * nt);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
      for (int64_t b = 0; b < n; ++b) {
        const Work w = carve(buf.p + per * thread_num(), nqb);
        pack_query_blocks(b, 0, nqb, w, 0);
        Operands op;
        op.Q = row_operand(x.q, b, 0, tq, D, Dp, w.Qpad, &op.ldq);
        op.dO = row_operand(x.g, b, 0, tq, Dv, Dvp, w.dOpad, &op.lddo);
        op.K = row_operand(x.k, b, 0, tk, D, Dp, w.Kpad, &op.ldk);
        for (int64_t i = 0; i < tq_pad * Dp; ++i) w.dQ[i] = T(0);
        for (int64_t k0 = 0; k0 < tk; k0 += BK)
          key_block(b, k0, Ls + b * tq_pad, Ds + b * tq_pad, op, w.dQ, w);
        store_dq(b, 0, tq, w.dQ);
      }
    } else {
      const int64_t per = round_up(work_size(nqb, BQ), 16);
      Scratch<T> buf(per * nt);
#pragma omp parallel num_threads(nt)
      {
        const Work w = carve(buf.p + per * thread_num(), nqb);
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n * nkb; ++t) {
          const int64_t b = t / nkb, k0 = (t % nkb) * BK;
          const int64_t qb0 = x.causal ? k0 / BQ : 0;
          pack_query_blocks(b, qb0, nqb, w, 0);
          Operands op;
          op.Q = row_operand(x.q, b, qb0 * BQ, tq, D, Dp, w.Qpad, &op.ldq);
          op.dO = row_operand(x.g, b, qb0 * BQ, tq, Dv, Dvp, w.dOpad, &op.lddo);
          op.K = nullptr, op.ldk = 0;
          key_block(b, k0, Ls + b * tq_pad, Ds + b * tq_pad, op, nullptr, w);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n * nqb; ++t) {
          const int64_t b = t / nqb, qb = nqb - 1 - t % nqb, q0 = qb * BQ;
          const int64_t mq = imin(BQ, tq - q0);
          const int64_t kend = x.causal ? imin(tk, q0 + mq) : tk;
          pack_query_blocks(b, qb, qb + 1, w, qb);
          Operands op;
          op.Q = op.dO = nullptr, op.ldq = op.lddo = 0;
          op.K = row_operand(x.k, b, 0, tk, D, Dp, w.Kpad, &op.ldk);  // tiles read whole blocks
          for (int64_t i = 0; i < BQ * Dp; ++i) w.dQ[i] = T(0);
          for (int64_t k0 = 0; k0 < kend; k0 += BK)
            tile(b, k0, imin(BK, tk - k0), q0, w.QT, w.dOT, Ls + b * tq_pad + q0,
                 Ds + b * tq_pad + q0, op, false, w.dQ, w);
          store_dq(b, q0, mq, w.dQ);
        }
      }
    }
  }
};

}  // namespace attn
}  // namespace
