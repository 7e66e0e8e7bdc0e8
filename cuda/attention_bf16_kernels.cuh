// Flash attention with bfloat16 inputs on tensor cores (sm_80+): q, k, v (and the output
// gradient) rounded to bfloat16, products on mma.sync.m16n8k16 with float32 accumulators,
// softmax statistics, output, lse and gradients in float32. Same contract as
// attention_kernels.cuh (contiguous (BH, T, D), D 32, 64 or 128, causal top-left aligned,
// Tk = 0 rows give nan and lse -inf), which also holds the float32 kernels' delta pass.
// In a header of its own so that cuda/host_check_training.cpp can also run it on the CPU.
//
// Forward (FlashAttention-2's schedule): a 128-thread block owns 64 query rows, 16 per
// warp; the warp keeps its q rows as A fragments in registers, streams 64-key tiles of k
// and v through shared memory (rows padded to D + 8 so that fragment loads hit 32
// distinct banks), computes the 16 x 64 scores with D / 16 x 8 mma, does the online
// softmax on the accumulators (row max and sum over the quad of lanes that share a row)
// and feeds the probabilities, rounded to bfloat16, straight back as A fragments of P v.
// Backward, deterministic (no atomics): dq per 64 query rows over key tiles; dk and dv
// per 64 key rows over query tiles, with k and v as A fragments from shared memory and
// p^T, ds^T reused as A fragments. P and dS are rounded to bfloat16 before their
// products, as in FlashAttention-2.
// FLOPs: 4 Tq Tk D forward (about half with causal), 10 Tq Tk D backward; all on tensor
// cores except the exponentials. No cp.async pipelining or ldmatrix yet.
// nvcc 13, sm_90, no spills: forward 125 / 168 registers (D 64 / 128), dq 166 / 230, dk/dv
// 168 / 222; static shared memory 18.0 / 34.0 KiB forward, at most 42.6 KiB per block.
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "attention_kernels.cuh"
#include "mma.cuh"

namespace pyzen::cuda::attention_bf16_kernels {

using attention_kernels::Dims;
using attention_kernels::visible;

constexpr int kBlock = 128;  // 4 warps
constexpr int kRows = 64;    // query rows (forward, dq) or key rows (dk, dv) per block; 16 per warp
template <int D>
constexpr int kPad = D + 8;  // shared row length in bfloat16
template <int D>
constexpr int kDqKeys = D <= 64 ? 64 : 32;  // key tile of the dq kernel
template <int D>
constexpr int kDkvQueries = D <= 64 ? 64 : 16;  // query tile of the dk/dv kernel (keeps it under 48 KiB)

// y = x rounded to bfloat16 (bits), over n elements.
__global__ void to_bf16_kernel(std::int64_t n, const float* x, std::uint16_t* y) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    y[i] = bf16_bits(x[i]);
}

// tile[r][:D] = rows r0 + r of a (rows, D) bfloat16 matrix, zeros past its end; 16-byte moves.
template <int D, int N>
__device__ __forceinline__ void load_tile(std::uint16_t (*tile)[kPad<D>], const std::uint16_t* src, std::int64_t r0,
                                          std::int64_t rows) {
  constexpr int V = D / 8;  // uint4 per row
  for (int e = threadIdx.x; e < N * V; e += kBlock) {
    const int r = e / V, c = e % V;
    reinterpret_cast<uint4*>(&tile[r][0])[c] =
        r0 + r < rows ? reinterpret_cast<const uint4*>(src + (r0 + r) * D)[c] : make_uint4(0, 0, 0, 0);
  }
}

// A fragments of rows (lo, lo + 8) of a (rows, D) bfloat16 matrix in global memory, for
// each 16-column chunk; zeros for rows past the end.
template <int D>
__device__ __forceinline__ void row_fragments(std::uint32_t (&a)[D / 16][4], const std::uint16_t* x, std::int64_t lo,
                                              std::int64_t rows, int t) {
  const std::int64_t hi = lo + 8;
#pragma unroll
  for (int kc = 0; kc < D / 16; ++kc) {
    const int c = kc * 16 + 2 * t;
    a[kc][0] = lo < rows ? ld_pair(x + lo * D + c) : 0u;
    a[kc][1] = hi < rows ? ld_pair(x + hi * D + c) : 0u;
    a[kc][2] = lo < rows ? ld_pair(x + lo * D + c + 8) : 0u;
    a[kc][3] = hi < rows ? ld_pair(x + hi * D + c + 8) : 0u;
  }
}

// acc[nt] += A (16 x D) times rows [8 nt, 8 nt + 8) of `tile` transposed: for scores, with
// the tile holding the other operand's rows.
template <int D, int NT>
__device__ __forceinline__ void times_rows(float (&acc)[NT][4], const std::uint32_t (&a)[D / 16][4],
                                           const std::uint16_t (*tile)[kPad<D>], int g, int t) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc)
      mma_bf16(acc[nt], a[kc], ld_pair(&tile[nt * 8 + g][kc * 16 + 2 * t]), ld_pair(&tile[nt * 8 + g][kc * 16 + 8 + 2 * t]));
}

// acc += P (16 x 16 NT/2, accumulators of the previous product rounded to bfloat16) times
// the tile's rows [0, 8 NT) (B read column-wise from the row-major tile).
template <int D, int NT>
__device__ __forceinline__ void times_tile(float (&acc)[D / 8][4], const float (&p)[NT][4],
                                           const std::uint16_t (*tile)[kPad<D>], int g, int t) {
#pragma unroll
  for (int kk = 0; kk < NT / 2; ++kk) {
    const std::uint32_t a[4] = {pack_bf16(p[2 * kk][0], p[2 * kk][1]), pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                                pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]), pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
    const int r = kk * 16 + 2 * t;
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) {
      const int c = dn * 8 + g;
      mma_bf16(acc[dn], a, pack_bits(tile[r][c], tile[r + 1][c]), pack_bits(tile[r + 8][c], tile[r + 9][c]));
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kBlock)
    attention_bf16_forward_kernel(Dims s, const std::uint16_t* q, const std::uint16_t* k, const std::uint16_t* v,
                                  float* out, float* lse) {
  constexpr int BC = 64, NT = BC / 8;
  __shared__ __align__(16) std::uint16_t ks[BC][kPad<D>], vs[BC][kPad<D>];
  const std::int64_t bh = blockIdx.y;
  q += bh * s.tq * D, k += bh * s.tk * D, v += bh * s.tk * D, out += bh * s.tq * D, lse += bh * s.tq;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const std::int64_t row0 = std::int64_t(blockIdx.x) * kRows, rows[2] = {row0 + warp * 16 + g, row0 + warp * 16 + g + 8};
  std::uint32_t qa[D / 16][4];
  row_fragments<D>(qa, q, rows[0], s.tq, t);
  float o[D / 8][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const std::int64_t kend = s.causal && row0 + kRows < s.tk ? row0 + kRows : s.tk;
  for (std::int64_t j0 = 0; j0 < kend; j0 += BC) {
    __syncthreads();  // the previous tile is consumed
    load_tile<D, BC>(ks, k, j0, s.tk);
    load_tile<D, BC>(vs, v, j0, s.tk);
    __syncthreads();
    float sc[NT][4] = {};
    times_rows<D, NT>(sc, qa, ks, g, t);
    float mt[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const std::int64_t j = j0 + nt * 8 + 2 * t + (e & 1);
        sc[nt][e] = visible(s, rows[e / 2], j) ? sc[nt][e] * s.scale : -INFINITY;
        mt[e / 2] = fmaxf(mt[e / 2], sc[nt][e]);
      }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mt[h] = quad_max(mt[h]);
      const float alpha = mt[h] == -INFINITY ? 1.0f : expf(m[h] - mt[h]);  // nothing seen yet: l, o are 0
      m[h] = mt[h];
      l[h] *= alpha;
#pragma unroll
      for (int dn = 0; dn < D / 8; ++dn) o[dn][2 * h] *= alpha, o[dn][2 * h + 1] *= alpha;
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pj = sc[nt][e] == -INFINITY ? 0.0f : expf(sc[nt][e] - m[e / 2]);
        sc[nt][e] = pj;
        l[e / 2] += pj;
      }
    times_tile<D, NT>(o, sc, vs, g, t);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float lh = quad_sum(l[h]);
    if (rows[h] >= s.tq) continue;
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) {
      float* dst = out + rows[h] * D + dn * 8 + 2 * t;
      dst[0] = o[dn][2 * h] / lh;
      dst[1] = o[dn][2 * h + 1] / lh;
    }
    if (t == 0) lse[rows[h]] = m[h] + logf(lh);
  }
}

// p = exp(x - lse) where visible (and the row saw a key); ds = p (dp - delta).
__device__ __forceinline__ void grad_probs(float& x, float& dp, bool vis, float li, float di, float scale) {
  const float p = vis && li != -INFINITY ? expf(x * scale - li) : 0.0f;
  dp = p != 0.0f ? p * (dp - di) : 0.0f;
  x = p;
}

// dq for 64 query rows per block (16 per warp), over the key tiles.
template <int D>
__global__ void __launch_bounds__(kBlock)
    attention_bf16_dq_kernel(Dims s, const std::uint16_t* g_, const std::uint16_t* q, const std::uint16_t* k,
                             const std::uint16_t* v, const float* lse, const float* delta, float* dq) {
  constexpr int BC = kDqKeys<D>, NT = BC / 8;
  __shared__ __align__(16) std::uint16_t ks[BC][kPad<D>], vs[BC][kPad<D>];
  const std::int64_t bh = blockIdx.y;
  q += bh * s.tq * D, g_ += bh * s.tq * D, dq += bh * s.tq * D, k += bh * s.tk * D, v += bh * s.tk * D;
  lse += bh * s.tq, delta += bh * s.tq;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const std::int64_t row0 = std::int64_t(blockIdx.x) * kRows, rows[2] = {row0 + warp * 16 + g, row0 + warp * 16 + g + 8};
  std::uint32_t qa[D / 16][4], ga[D / 16][4];
  row_fragments<D>(qa, q, rows[0], s.tq, t);
  row_fragments<D>(ga, g_, rows[0], s.tq, t);
  float li[2], di[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    li[h] = rows[h] < s.tq ? lse[rows[h]] : -INFINITY;
    di[h] = rows[h] < s.tq ? delta[rows[h]] : 0.0f;
  }
  float acc[D / 8][4] = {};
  const std::int64_t kend = s.causal && row0 + kRows < s.tk ? row0 + kRows : s.tk;
  for (std::int64_t j0 = 0; j0 < kend; j0 += BC) {
    __syncthreads();
    load_tile<D, BC>(ks, k, j0, s.tk);
    load_tile<D, BC>(vs, v, j0, s.tk);
    __syncthreads();
    float sc[NT][4] = {}, dp[NT][4] = {};
    times_rows<D, NT>(sc, qa, ks, g, t);
    times_rows<D, NT>(dp, ga, vs, g, t);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        grad_probs(sc[nt][e], dp[nt][e], visible(s, rows[e / 2], j0 + nt * 8 + 2 * t + (e & 1)), li[e / 2], di[e / 2],
                   s.scale);
    times_tile<D, NT>(acc, dp, ks, g, t);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (rows[h] >= s.tq) continue;
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) {
      float* dst = dq + rows[h] * D + dn * 8 + 2 * t;
      dst[0] = acc[dn][2 * h] * s.scale;
      dst[1] = acc[dn][2 * h + 1] * s.scale;
    }
  }
}

// dk and dv for 64 key rows per block (16 per warp), over the query tiles that see them.
template <int D>
__global__ void __launch_bounds__(kBlock)
    attention_bf16_dkv_kernel(Dims s, const std::uint16_t* g_, const std::uint16_t* q, const std::uint16_t* k,
                              const std::uint16_t* v, const float* lse, const float* delta, float* dk, float* dv) {
  constexpr int BQ = kDkvQueries<D>, NT = BQ / 8;
  __shared__ __align__(16) std::uint16_t ks[kRows][kPad<D>], vs[kRows][kPad<D>], qs[BQ][kPad<D>], gs[BQ][kPad<D>];
  __shared__ float ls[BQ], dl[BQ];
  const std::int64_t bh = blockIdx.y;
  q += bh * s.tq * D, g_ += bh * s.tq * D, k += bh * s.tk * D, v += bh * s.tk * D, dk += bh * s.tk * D,
      dv += bh * s.tk * D;
  lse += bh * s.tq, delta += bh * s.tq;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const std::int64_t col0 = std::int64_t(blockIdx.x) * kRows, keys[2] = {col0 + warp * 16 + g, col0 + warp * 16 + g + 8};
  load_tile<D, kRows>(ks, k, col0, s.tk);  // read after the loop's first barrier
  load_tile<D, kRows>(vs, v, col0, s.tk);
  float adk[D / 8][4] = {}, adv[D / 8][4] = {};
  // With causal masking, queries before col0 see none of these keys.
  for (std::int64_t i0 = s.causal ? col0 : 0; i0 < s.tq; i0 += BQ) {
    __syncthreads();
    load_tile<D, BQ>(qs, q, i0, s.tq);
    load_tile<D, BQ>(gs, g_, i0, s.tq);
    attention_kernels::load_row_stats<BQ>(ls, dl, lse, delta, i0, s.tq);
    __syncthreads();
    float st[NT][4] = {}, dpt[NT][4] = {};  // s^T and dp^T: 16 keys x BQ queries per warp
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc) {
      std::uint32_t ka[4], va[4];
      a_fragment(ka, &ks[0][0], kPad<D>, warp * 16 + g, kc * 16, t);
      a_fragment(va, &vs[0][0], kPad<D>, warp * 16 + g, kc * 16, t);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int c = kc * 16 + 2 * t;
        mma_bf16(st[nt], ka, ld_pair(&qs[nt * 8 + g][c]), ld_pair(&qs[nt * 8 + g][c + 8]));
        mma_bf16(dpt[nt], va, ld_pair(&gs[nt * 8 + g][c]), ld_pair(&gs[nt * 8 + g][c + 8]));
      }
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int qi = nt * 8 + 2 * t + (e & 1);
        grad_probs(st[nt][e], dpt[nt][e], visible(s, i0 + qi, keys[e / 2]), ls[qi], dl[qi], s.scale);
      }
    times_tile<D, NT>(adv, st, gs, g, t);
    times_tile<D, NT>(adk, dpt, qs, g, t);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (keys[h] >= s.tk) continue;
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) {
      const std::int64_t o = keys[h] * D + dn * 8 + 2 * t;
      dk[o] = adk[dn][2 * h] * s.scale, dk[o + 1] = adk[dn][2 * h + 1] * s.scale;
      dv[o] = adv[dn][2 * h], dv[o + 1] = adv[dn][2 * h + 1];
    }
  }
}

}  // namespace pyzen::cuda::attention_bf16_kernels
