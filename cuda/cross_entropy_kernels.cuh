// Softmax cross-entropy over contiguous (N, C) logits with int64 targets, forward (per-row
// loss and logsumexp) and backward (dlogits), one kernel each, with the CPU kernel's
// semantics (csrc/kernels/cross_entropy_impl.h): ignore_index rows give loss 0 and
// gradient 0; label smoothing eps mixes in the uniform target:
//   loss = (1 - eps) (lse - x[t]) + eps (lse - mean(x)).
// A target outside [0, C) (and not ignore_index) gives a nan loss and a nan gradient row;
// the kernels cannot raise, so the caller checks targets if it wants an error.
// In a header of its own so that cuda/host_check_training.cpp can also run it on the CPU.
//
// One 256-thread block per row (grid-stride over rows). Forward: a block max, then the
// sum of exp(x - max) (and of x, with smoothing) in double per thread, combined in a fixed
// tree: two reads of the row (the second mostly from L2) and ~3 FLOPs + an exp per
// element. Backward: one read of the row and one write, exp(x - lse) per element; where
// lse is too large for x - lse to keep float precision, the row's max and lse are
// recomputed (as the CPU kernel does). Deterministic: fixed reduction order.
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cmath>

#include "common.cuh"
#include "reduce_kernels.cuh"

namespace pyzen::cuda::cross_entropy_kernels {

using reduce_kernels::block_reduce;
using reduce_kernels::SumOp;

template <typename T>
__device__ __forceinline__ T eps_of() {
  return sizeof(T) == 4 ? T(1.1920928955078125e-07) : T(2.220446049250313e-16);
}

// The row's max (nan-ignoring, like the CPU's comparisons; -inf when all are) and
// lse = shift + log(sum exp(x - shift)) with shift = max, or 0 when max is -inf.
template <typename T>
__device__ __forceinline__ void row_lse(const T* x, std::int64_t c, bool smooth, double* smem, double& lse, double& sumx,
                                        T& max) {
  T m = T(-INFINITY);
  for (std::int64_t j = threadIdx.x; j < c; j += kThreads) m = x[j] > m ? x[j] : m;
  smem[threadIdx.x] = double(m);
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride && smem[threadIdx.x + stride] > smem[threadIdx.x])
      smem[threadIdx.x] = smem[threadIdx.x + stride];
    __syncthreads();
  }
  m = T(smem[0]);
  __syncthreads();
  const T shift = m == T(-INFINITY) ? T(0) : m;
  double s = 0, sx = 0;
  for (std::int64_t j = threadIdx.x; j < c; j += kThreads) {
    s += exp(double(x[j] - shift));
    if (smooth) sx += x[j];
  }
  s = block_reduce<double, SumOp<double>>(s, smem);
  if (smooth) sx = block_reduce<double, SumOp<double>>(sx, smem);
  lse = double(shift) + log(s);
  sumx = sx;
  max = m;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_forward_kernel(std::int64_t rows, std::int64_t c, const T* logits, const std::int64_t* target,
                                 std::int64_t ignore_index, double label_smoothing, T* losses, T* lse_out) {
  __shared__ double smem[kThreads];
  const bool smooth = label_smoothing != 0;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = logits + r * c;
    double lse, sumx;
    T max;
    row_lse(x, c, smooth, smem, lse, sumx, max);
    if (threadIdx.x == 0) {
      lse_out[r] = T(lse);
      const std::int64_t t = target[r];
      if (t == ignore_index) {
        losses[r] = T(0);
      } else if (t < 0 || t >= c) {
        losses[r] = T(NAN);
      } else {
        double loss = lse - double(x[t]);
        if (smooth) loss = (1.0 - label_smoothing) * loss + label_smoothing * (lse - sumx / double(c));
        losses[r] = T(loss);
      }
    }
  }
}

// dlogits[r] = (softmax(x_r) - (1 - eps) onehot(t_r) - eps / C) * g[r].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_backward_kernel(std::int64_t rows, std::int64_t c, const T* g, const T* logits,
                                  const std::int64_t* target, const T* lse, std::int64_t ignore_index,
                                  double label_smoothing, T* dlogits) {
  __shared__ double smem[kThreads];
  const T smooth = T(label_smoothing / double(c)), hit = T(1.0 - label_smoothing);
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = logits + r * c;
    T* d = dlogits + r * c;
    const std::int64_t t = target[r];
    if (t == ignore_index || t < 0 || t >= c) {
      const T fill = t == ignore_index ? T(0) : T(NAN);
      for (std::int64_t j = threadIdx.x; j < c; j += kThreads) d[j] = fill;
      continue;
    }
    const T gr = g[r];
    T shift = 0, rest = lse[r];
    // x - lse loses precision where |lse| is large: subtract the row max first (block-uniform test).
    if (isfinite(rest) && fabs(double(rest)) * double(eps_of<T>()) > 0x1p-18) {
      double l, unused;
      row_lse(x, c, false, smem, l, unused, shift);
      rest = T(l - double(shift));
    }
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) {
      const T p = T(exp(double((x[j] - shift) - rest)));
      d[j] = j == t ? ((p - hit) - smooth) * gr : (p - smooth) * gr;
    }
  }
}

}  // namespace pyzen::cuda::cross_entropy_kernels
