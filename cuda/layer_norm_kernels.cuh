// Layer norm over the last dim of contiguous (rows, C) arrays, forward and backward, with
// the CPU kernel's arithmetic (csrc/kernels/layer_norm_impl.h). In a header of its own so
// that cuda/host_check_training.cpp can also run it on the CPU.
//
// Forward: one 256-thread block per row (grid-stride over rows). Shifted two-pass
// statistics as on the CPU: d = x - x[0], mean(d), then mean((d - mean(d))^2); each thread
// folds its elements in T, the block combines the 256 partials in double in a fixed tree.
// Three reads of the row (two from L1/L2) and one write: 2 x 4 bytes of DRAM traffic per
// float32 element, about 8 FLOPs per element.
//
// Backward: the same row blocks compute dx = rstd * (gw - mean(gw) - xhat * mean(gw xhat))
// with gw = g * weight. dweight and dbias: block b adds g * xhat and g of its rows (b,
// b + nparts, ...) into its own row of a (nparts, C) workspace, column j by thread j mod
// 256, so no two threads touch one element; a second kernel sums the nparts partials of
// each column in order. nparts depends on the shape only: the same inputs give the same
// bits on any GPU (no atomics). DRAM traffic: g, x read and dx written, plus the
// workspace (2 nparts C elements, written and read once).
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cmath>

#include "common.cuh"

namespace pyzen::cuda::layer_norm_kernels {

// Most partial rows for dweight/dbias: enough blocks to fill a large GPU with 256-thread blocks.
constexpr std::int64_t kMaxParts = 512;

inline std::int64_t backward_parts(std::int64_t rows) { return rows < kMaxParts ? rows : kMaxParts; }

// Sums of a and b over the block (fixed-order tree, double); every thread gets both.
__device__ __forceinline__ void block_sum2(double& a, double& b, double (*smem)[kThreads]) {
  smem[0][threadIdx.x] = a;
  smem[1][threadIdx.x] = b;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) {
      smem[0][threadIdx.x] += smem[0][threadIdx.x + stride];
      smem[1][threadIdx.x] += smem[1][threadIdx.x + stride];
    }
    __syncthreads();
  }
  a = smem[0][0];
  b = smem[1][0];
  __syncthreads();  // smem is reused right after
}

// weight and bias may be null. A row of C == 0 gets mean = rstd = nan (mean of nothing).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    layer_norm_forward_kernel(std::int64_t rows, std::int64_t c, double eps, const T* x, const T* weight,
                              const T* bias, T* out, T* mean, T* rstd) {
  __shared__ double smem[2][kThreads];
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    if (c == 0) {
      if (threadIdx.x == 0) mean[r] = rstd[r] = T(NAN);
      continue;
    }
    const T* xr = x + r * c;
    const T x0 = xr[0];
    T s = 0;
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) s += xr[j] - x0;
    double md = s, unused = 0;
    block_sum2(md, unused, smem);
    md /= double(c);
    const T mdt = T(md);
    T q = 0;
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) {
      const T e = (xr[j] - x0) - mdt;
      q += e * e;
    }
    double var = q;
    block_sum2(var, unused, smem);
    const double rs = 1.0 / sqrt(var / double(c) + eps);
    if (threadIdx.x == 0) {
      mean[r] = T(double(x0) + md);
      rstd[r] = T(rs);
    }
    const T rst = T(rs);
    T* yr = out + r * c;
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) {
      T v = ((xr[j] - x0) - mdt) * rst;
      if (weight) v = v * weight[j];
      if (bias) v = v + bias[j];
      yr[j] = v;
    }
  }
}

// dx for every row; with pdw / pdb (each (gridDim.x, C), zeroed), block b's partial sums of
// g * xhat and g over its rows. weight, pdw and pdb may be null.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    layer_norm_backward_kernel(std::int64_t rows, std::int64_t c, const T* g, const T* x, const T* weight,
                               const T* mean, const T* rstd, T* dx, T* pdw, T* pdb) {
  __shared__ double smem[2][kThreads];
  T* my_dw = pdw ? pdw + std::int64_t(blockIdx.x) * c : nullptr;
  T* my_db = pdb ? pdb + std::int64_t(blockIdx.x) * c : nullptr;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    if (c == 0) continue;
    const T* gr = g + r * c;
    const T* xr = x + r * c;
    const T rs = rstd[r];
    // As on the CPU: where |mean| > 8 std the forward's rounding of the mean to T would be
    // magnified in xhat, so the mean is recomputed as x[0] + mean(x - x[0]).
    T shift = mean[r], mu = 0;
    if (fabs(double(shift)) * double(rs) > 8) {
      const T x0 = xr[0];
      shift = x0;
      T s = 0;
      for (std::int64_t j = threadIdx.x; j < c; j += kThreads) s += xr[j] - x0;
      double md = s, unused = 0;
      block_sum2(md, unused, smem);
      mu = T(md / double(c));
    }
    T ta = 0, tb = 0;
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) {
      const T xh = ((xr[j] - shift) - mu) * rs;
      const T gw = weight ? gr[j] * weight[j] : gr[j];
      ta += gw;
      tb += gw * xh;
      if (my_dw) my_dw[j] += gr[j] * xh;
      if (my_db) my_db[j] += gr[j];
    }
    double sa = ta, sb = tb;
    block_sum2(sa, sb, smem);
    const T ca = T(sa / double(c)), cb = T(sb / double(c));
    T* dxr = dx + r * c;
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) {
      const T xh = ((xr[j] - shift) - mu) * rs;
      const T gw = weight ? gr[j] * weight[j] : gr[j];
      dxr[j] = ((gw - ca) - xh * cb) * rs;
    }
  }
}

// out[j] = sum over p of part[p * c + j], in order of p (one thread per column).
template <typename T>
__global__ void column_sum_kernel(std::int64_t nparts, std::int64_t c, const T* part, T* out) {
  for (std::int64_t j = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; j < c;
       j += std::int64_t(gridDim.x) * blockDim.x) {
    T s = 0;
    for (std::int64_t p = 0; p < nparts; ++p) s += part[p * c + j];
    out[j] = s;
  }
}

}  // namespace pyzen::cuda::layer_norm_kernels
