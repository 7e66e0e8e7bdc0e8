// Flash attention, float32, head dims 32, 64 and 128: out = softmax(q k^T * scale [causal]) v
// for q (BH, Tq, D), k and v (BH, Tk, D), all contiguous, without materialising the
// (Tq, Tk) scores. Causal: query i sees keys j <= i (top-left aligned, as the CPU kernel).
// In a header of its own so that cuda/host_check_training.cpp can also run it on the CPU.
//
// Forward: a 128-thread block owns 32 query rows of one (batch, head); 4 threads per row,
// each holding a quarter of the row's q and output accumulator in registers. Key/value
// tiles of 2048 / D rows (32 for D = 32) go through shared memory; each thread writes its partial dot
// products to shared memory and the 4 of a row add them in a fixed order; the online
// softmax (running max m, sum l) rescales the accumulator per tile. Saves
// lse = m + log(l) per row for the backward. A row that sees no key (Tk = 0) gives nan
// output and lse = -inf, like the CPU kernel.
// Backward (FlashAttention-2's split, deterministic: no atomics): delta_i = dO_i . O_i;
// then one kernel per query tile accumulates dq over key tiles, and one kernel per key
// tile accumulates dk and dv over query tiles, each recomputing p = exp(s - lse).
// FLOPs: 4 Tq Tk D forward (2 with causal masking skipped per tile, roughly halved),
// about 2.5x that backward; DRAM bytes: q, k, v, out once per block row/column tile,
// plus k and v re-read per query tile (L2-resident for moderate T). No tensor cores.
// nvcc 13, sm_90: no register spills; 79 / 127 registers forward (D 64 / 128, with the
// tile's scores in a 128 / 64-byte stack frame), up to 201 backward; <= 24.2 KiB static
// shared memory per block.
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "bf16.cuh"
#include "common.cuh"

namespace pyzen::cuda::attention_kernels {

constexpr int kRows = 32;                   // query (or key) rows per block
constexpr int kParts = 4;                   // threads per row
constexpr int kBlock = kRows * kParts;      // threads per block

template <int D>
constexpr int kForwardCols = D >= 64 ? 2048 / D : 32;  // key rows per shared tile (forward; <= 24 KiB for D 32)
template <int D>
constexpr int kBackwardCols = 1024 / D;  // rows per shared tile (backward: two tiles of parts)

struct Dims {
  std::int64_t tq, tk;
  float scale;
  bool causal;
};

__device__ __forceinline__ bool visible(const Dims& s, std::int64_t i, std::int64_t j) {
  return i < s.tq && j < s.tk && !(s.causal && j > i);
}

// tile[r][:] = src row r0 + r of a (rows, D) matrix, zeros past its end.
template <int D, int N>
__device__ __forceinline__ void load_tile(float (*tile)[D], const float* src, std::int64_t r0, std::int64_t rows) {
  for (int e = threadIdx.x; e < N * D; e += kBlock) {
    const int r = e / D, d = e % D;
    tile[r][d] = r0 + r < rows ? src[(r0 + r) * D + d] : 0.0f;
  }
}

template <int N>
__device__ __forceinline__ float sum_parts(const float (&p)[N][kParts], int j) {
  return (p[j][0] + p[j][1]) + (p[j][2] + p[j][3]);
}

// Keys the rows [row0, row0 + kRows) can see: all, or up to the last row with causal.
__device__ __forceinline__ std::int64_t key_end(const Dims& s, std::int64_t row0) {
  const std::int64_t last = row0 + kRows;
  return s.causal && last < s.tk ? last : s.tk;
}

template <int D>
__global__ void __launch_bounds__(kBlock)
    attention_forward_kernel(Dims s, const float* q, const float* k, const float* v, float* out, float* lse) {
  constexpr int BC = kForwardCols<D>, DP = D / kParts;
  __shared__ float ks[BC][D], vs[BC][D], part[kRows][BC][kParts];
  const std::int64_t bh = blockIdx.y;
  q += bh * s.tq * D, k += bh * s.tk * D, v += bh * s.tk * D, out += bh * s.tq * D, lse += bh * s.tq;
  const int r = threadIdx.x / kParts, p = threadIdx.x % kParts;
  const std::int64_t row0 = std::int64_t(blockIdx.x) * kRows, i = row0 + r;
  const bool live = i < s.tq;
  float qr[DP], acc[DP];
  for (int d = 0; d < DP; ++d) qr[d] = live ? q[i * D + p * DP + d] : 0.0f, acc[d] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const std::int64_t kend = key_end(s, row0);
  for (std::int64_t j0 = 0; j0 < kend; j0 += BC) {
    load_tile<D, BC>(ks, k, j0, s.tk);
    load_tile<D, BC>(vs, v, j0, s.tk);
    __syncthreads();
    for (int jj = 0; jj < BC; ++jj) {
      float dot = 0.0f;
      for (int d = 0; d < DP; ++d) dot += qr[d] * ks[jj][p * DP + d];
      part[r][jj][p] = dot;
    }
    __syncthreads();
    float sc[BC];
    float mt = m;
    for (int jj = 0; jj < BC; ++jj) {
      sc[jj] = visible(s, i, j0 + jj) ? sum_parts(part[r], jj) * s.scale : -INFINITY;
      mt = fmaxf(mt, sc[jj]);
    }
    if (mt != -INFINITY) {  // else nothing visible yet: keep m = -inf, l = 0
      const float alpha = expf(m - mt);
      l *= alpha;
      for (int d = 0; d < DP; ++d) acc[d] *= alpha;
      for (int jj = 0; jj < BC; ++jj) {
        const float pj = expf(sc[jj] - mt);
        l += pj;
        for (int d = 0; d < DP; ++d) acc[d] += pj * vs[jj][p * DP + d];
      }
      m = mt;
    }
    __syncthreads();  // the next tile overwrites ks, vs and part
  }
  if (live) {
    for (int d = 0; d < DP; ++d) out[i * D + p * DP + d] = acc[d] / l;
    if (p == 0) lse[i] = m + logf(l);
  }
}

__device__ __forceinline__ float value(float x) { return x; }
__device__ __forceinline__ float value(std::uint16_t bf16) { return bf16_float(bf16); }

// delta[i] = g[i] . out[i] over n rows of D (one thread per row); g float32, or bfloat16
// bits for the bfloat16 kernels (so that delta is the row sum of p dp they compute).
template <typename G>
__global__ void attention_delta_kernel(std::int64_t n, int d, const G* g, const float* out, float* delta) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    float acc = 0.0f;
    for (int c = 0; c < d; ++c) acc += value(g[i * d + c]) * out[i * d + c];
    delta[i] = acc;
  }
}

// ls[i], dl[i] = lse and delta of query row i0 + i, for i < N (-inf and 0 past tq); run by
// the block's first N threads.
template <int N>
__device__ __forceinline__ void load_row_stats(float* ls, float* dl, const float* lse, const float* delta, std::int64_t i0,
                                               std::int64_t tq) {
  if (threadIdx.x < N) {
    const bool in = i0 + threadIdx.x < tq;
    ls[threadIdx.x] = in ? lse[i0 + threadIdx.x] : -INFINITY;
    dl[threadIdx.x] = in ? delta[i0 + threadIdx.x] : 0.0f;
  }
}

// p = exp(s - lse) where visible and the row saw any key; ds = p (dp - delta).
__device__ __forceinline__ void probs(const Dims& s, std::int64_t i, std::int64_t j, float x, float dp, float li, float di,
                                      float& pj, float& ds) {
  pj = visible(s, i, j) && li != -INFINITY ? expf(x - li) : 0.0f;
  ds = pj != 0.0f ? pj * (dp - di) : 0.0f;
}

// For every row n of the tiles: this thread's quarter p of x . xs[n] into sp[n][p] and of
// y . ys[n] into dpp[n][p] (the backward's scores and dp, summed over quarters later).
template <int D, int N>
__device__ __forceinline__ void partial_dots(float (&sp)[N][kParts], float (&dpp)[N][kParts], const float (&x)[D / kParts],
                                             const float (&y)[D / kParts], const float (*xs)[D], const float (*ys)[D], int p) {
  constexpr int DP = D / kParts;
  for (int n = 0; n < N; ++n) {
    float a = 0.0f, b = 0.0f;
    for (int d = 0; d < DP; ++d) a += x[d] * xs[n][p * DP + d], b += y[d] * ys[n][p * DP + d];
    sp[n][p] = a;
    dpp[n][p] = b;
  }
}

// dq for 32 query rows per block, over the key tiles.
template <int D>
__global__ void __launch_bounds__(kBlock)
    attention_dq_kernel(Dims s, const float* g, const float* q, const float* k, const float* v, const float* lse,
                        const float* delta, float* dq) {
  constexpr int BC = kBackwardCols<D>, DP = D / kParts;
  __shared__ float ks[BC][D], vs[BC][D], sp[kRows][BC][kParts], dpp[kRows][BC][kParts];
  const std::int64_t bh = blockIdx.y;
  q += bh * s.tq * D, g += bh * s.tq * D, dq += bh * s.tq * D, k += bh * s.tk * D, v += bh * s.tk * D;
  lse += bh * s.tq, delta += bh * s.tq;
  const int r = threadIdx.x / kParts, p = threadIdx.x % kParts;
  const std::int64_t row0 = std::int64_t(blockIdx.x) * kRows, i = row0 + r;
  const bool live = i < s.tq;
  float qr[DP], gr[DP], acc[DP];
  for (int d = 0; d < DP; ++d) {
    qr[d] = live ? q[i * D + p * DP + d] : 0.0f;
    gr[d] = live ? g[i * D + p * DP + d] : 0.0f;
    acc[d] = 0.0f;
  }
  const float li = live ? lse[i] : 0.0f, di = live ? delta[i] : 0.0f;
  const std::int64_t kend = key_end(s, row0);
  for (std::int64_t j0 = 0; j0 < kend; j0 += BC) {
    load_tile<D, BC>(ks, k, j0, s.tk);
    load_tile<D, BC>(vs, v, j0, s.tk);
    __syncthreads();
    partial_dots<D, BC>(sp[r], dpp[r], qr, gr, ks, vs, p);
    __syncthreads();
    for (int jj = 0; jj < BC; ++jj) {
      float pj, ds;
      probs(s, i, j0 + jj, sum_parts(sp[r], jj) * s.scale, sum_parts(dpp[r], jj), li, di, pj, ds);
      for (int d = 0; d < DP; ++d) acc[d] += ds * ks[jj][p * DP + d];
    }
    __syncthreads();
  }
  if (live)
    for (int d = 0; d < DP; ++d) dq[i * D + p * DP + d] = acc[d] * s.scale;
}

// dk and dv for 32 key rows per block, over the query tiles that can see them.
template <int D>
__global__ void __launch_bounds__(kBlock)
    attention_dkv_kernel(Dims s, const float* g, const float* q, const float* k, const float* v, const float* lse,
                         const float* delta, float* dk, float* dv) {
  constexpr int BC = kBackwardCols<D>, DP = D / kParts;
  __shared__ float qs[BC][D], gs[BC][D], sp[kRows][BC][kParts], dpp[kRows][BC][kParts], ls[BC], dl[BC];
  const std::int64_t bh = blockIdx.y;
  q += bh * s.tq * D, g += bh * s.tq * D, k += bh * s.tk * D, v += bh * s.tk * D, dk += bh * s.tk * D,
      dv += bh * s.tk * D;
  lse += bh * s.tq, delta += bh * s.tq;
  const int r = threadIdx.x / kParts, p = threadIdx.x % kParts;
  const std::int64_t col0 = std::int64_t(blockIdx.x) * kRows, j = col0 + r;
  const bool live = j < s.tk;
  float kr[DP], vr[DP], ak[DP], av[DP];
  for (int d = 0; d < DP; ++d) {
    kr[d] = live ? k[j * D + p * DP + d] : 0.0f;
    vr[d] = live ? v[j * D + p * DP + d] : 0.0f;
    ak[d] = av[d] = 0.0f;
  }
  // With causal masking, query rows before col0 see none of these keys.
  const std::int64_t i_begin = s.causal ? col0 / BC * BC : 0;
  for (std::int64_t i0 = i_begin; i0 < s.tq; i0 += BC) {
    load_tile<D, BC>(qs, q, i0, s.tq);
    load_tile<D, BC>(gs, g, i0, s.tq);
    load_row_stats<BC>(ls, dl, lse, delta, i0, s.tq);
    __syncthreads();
    partial_dots<D, BC>(sp[r], dpp[r], kr, vr, qs, gs, p);
    __syncthreads();
    for (int ii = 0; ii < BC; ++ii) {
      float pj, ds;
      probs(s, i0 + ii, j, sum_parts(sp[r], ii) * s.scale, sum_parts(dpp[r], ii), ls[ii], dl[ii], pj, ds);
      for (int d = 0; d < DP; ++d) av[d] += pj * gs[ii][p * DP + d], ak[d] += ds * qs[ii][p * DP + d];
    }
    __syncthreads();
  }
  if (live)
    for (int d = 0; d < DP; ++d) dk[j * D + p * DP + d] = ak[d] * s.scale, dv[j * D + p * DP + d] = av[d];
}

}  // namespace pyzen::cuda::attention_kernels
