// The reduction and softmax kernels (see reduce.cu for the scheme and the launches). In a
// header of their own so that cuda/host_check.cpp can also run them on the CPU.
#pragma once

#include <cmath>
#include <type_traits>

#include "common.cuh"

namespace pyzen::cuda::reduce_kernels {

template <typename T>
__device__ __forceinline__ T lowest() {
  if constexpr (std::is_floating_point_v<T>) return -INFINITY;
  else if constexpr (std::is_same_v<T, bool>) return false;
  else return INT64_MIN;
}

template <typename T>
__device__ __forceinline__ T highest() {
  if constexpr (std::is_floating_point_v<T>) return INFINITY;
  else if constexpr (std::is_same_v<T, bool>) return true;
  else return INT64_MAX;
}

template <typename T>
struct SumOp {
  __device__ static T identity() { return T(0); }
  __device__ static T combine(T a, T b) { return a + b; }
};
template <typename T>
struct ProdOp {
  __device__ static T identity() { return T(1); }
  __device__ static T combine(T a, T b) { return a * b; }
};
template <typename T>
struct MaxOp {  // nan wins, as in NumPy
  __device__ static T identity() { return lowest<T>(); }
  __device__ static T combine(T a, T b) { return is_nan(a) ? a : (is_nan(b) ? b : (a > b ? a : b)); }
};
template <typename T>
struct MinOp {
  __device__ static T identity() { return highest<T>(); }
  __device__ static T combine(T a, T b) { return is_nan(a) ? a : (is_nan(b) ? b : (a < b ? a : b)); }
};

// Fixed-order tree over the block's kThreads partials; every thread returns the result.
template <typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, T* smem) {
  smem[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) smem[threadIdx.x] = Op::combine(smem[threadIdx.x], smem[threadIdx.x + stride]);
    __syncthreads();
  }
  const T out = smem[0];
  __syncthreads();  // smem may be reused right after
  return out;
}

template <typename T, typename Op>
__global__ void reduce_kernel(std::int64_t m, std::int64_t r, T* out, const T* x, Indexer<1> outer, Indexer<1> inner) {
  __shared__ T smem[kThreads];
  for (std::int64_t row = blockIdx.x; row < m; row += gridDim.x) {
    std::int64_t base[1];
    outer.offsets(row, base);
    T acc = Op::identity();
    for (std::int64_t j = threadIdx.x; j < r; j += kThreads) {
      std::int64_t off[1];
      inner.offsets(j, off);
      acc = Op::combine(acc, x[base[0] + off[0]]);
    }
    acc = block_reduce<T, Op>(acc, smem);
    if (threadIdx.x == 0) out[row] = acc;
  }
}

// Whether (a, ia) beats (b, ib) for argmax (largest) or argmin: nan beats numbers (NumPy
// returns the first nan), ties go to the smaller index, index -1 means "nothing yet".
template <typename T>
__device__ __forceinline__ bool beats(bool largest, T a, std::int64_t ia, T b, std::int64_t ib) {
  if (ib < 0) return true;
  if (ia < 0) return false;
  const bool an = is_nan(a), bn = is_nan(b);
  if (an || bn) return an && bn ? ia < ib : an;
  if (a == b) return ia < ib;
  return largest ? a > b : a < b;
}

template <typename T>
__global__ void arg_kernel(bool largest, std::int64_t m, std::int64_t r, std::int64_t* out, const T* x,
                           Indexer<1> outer, Indexer<1> inner) {
  __shared__ T sv[kThreads];
  __shared__ std::int64_t si[kThreads];
  for (std::int64_t row = blockIdx.x; row < m; row += gridDim.x) {
    std::int64_t base[1];
    outer.offsets(row, base);
    T best = T(0);
    std::int64_t best_i = -1;
    for (std::int64_t j = threadIdx.x; j < r; j += kThreads) {
      std::int64_t off[1];
      inner.offsets(j, off);
      const T v = x[base[0] + off[0]];
      if (beats(largest, v, j, best, best_i)) best = v, best_i = j;
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = best_i;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
      if (static_cast<int>(threadIdx.x) < stride && beats(largest, sv[threadIdx.x + stride], si[threadIdx.x + stride],
                                        sv[threadIdx.x], si[threadIdx.x])) {
        sv[threadIdx.x] = sv[threadIdx.x + stride];
        si[threadIdx.x] = si[threadIdx.x + stride];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) out[row] = si[0];
    __syncthreads();
  }
}

template <typename T>
__global__ void cumulative_kernel(bool product, std::int64_t rows, std::int64_t len, T* out, const T* x,
                                  Indexer<1> outer, std::int64_t stride) {
  for (std::int64_t row = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; row < rows;
       row += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t base[1];
    outer.offsets(row, base);
    T acc = product ? T(1) : T(0);
    for (std::int64_t j = 0; j < len; ++j) {
      const T v = x[base[0] + j * stride];
      acc = product ? acc * v : acc + v;
      out[row * len + j] = acc;
    }
  }
}

// One block per row of C contiguous elements. The max is replaced by 0 when it is not
// finite (all -inf, or inf or nan present), as the CPU backend does: a row of -inf gives
// nan (0/0), a row holding nan gives nan.
template <typename T>
__global__ void softmax_kernel(bool log_out, std::int64_t rows, std::int64_t c, T* out, const T* x) {
  __shared__ T smem[kThreads];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * c;
    T* yr = out + row * c;
    T m = MaxOp<T>::identity();
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) m = MaxOp<T>::combine(m, xr[j]);
    m = block_reduce<T, MaxOp<T>>(m, smem);
    if (!isfinite(m)) m = T(0);
    T s = T(0);
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) s += exp(xr[j] - m);
    s = block_reduce<T, SumOp<T>>(s, smem);
    if (log_out) {
      const T shift = m + log(s);
      for (std::int64_t j = threadIdx.x; j < c; j += kThreads) yr[j] = xr[j] - shift;
    } else {
      for (std::int64_t j = threadIdx.x; j < c; j += kThreads) yr[j] = exp(xr[j] - m) / s;
    }
  }
}

// softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g).
template <typename T>
__global__ void softmax_backward_kernel(bool log_out, std::int64_t rows, std::int64_t c, T* dx, const T* g,
                                        const T* y) {
  __shared__ T smem[kThreads];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* gr = g + row * c;
    const T* yr = y + row * c;
    T s = T(0);
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) s += log_out ? gr[j] : gr[j] * yr[j];
    s = block_reduce<T, SumOp<T>>(s, smem);
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads)
      dx[row * c + j] = log_out ? gr[j] - exp(yr[j]) * s : yr[j] * (gr[j] - s);
  }
}

}  // namespace pyzen::cuda::reduce_kernels
