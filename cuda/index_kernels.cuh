// The index kernels (see index.cu for the scheme and the launches). In a header of their
// own so that cuda/host_check.cpp can also run them on the CPU.
#pragma once

#include <type_traits>

#include "common.cuh"
#include "kernels.h"

namespace pyzen::cuda::index_kernels {

__device__ __forceinline__ bool wrap(std::int64_t& i, std::int64_t n) {
  if (i < 0) i += n;
  return i >= 0 && i < n;
}

// out (contiguous) viewed as (outer, L, inner): out[o, l, q] = x[o, index[l], q].
template <typename T>
__global__ void take_kernel(std::int64_t total, std::int64_t len, std::int64_t inner_n, T* out, const T* x,
                            const std::int64_t* index, std::int64_t axis_size, std::int64_t axis_stride,
                            Indexer<1> outer, Indexer<1> inner) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t q = i % inner_n;
    const std::int64_t l = (i / inner_n) % len;
    const std::int64_t o = i / inner_n / len;
    std::int64_t k = index[l];
    if (!wrap(k, axis_size)) {
      out[i] = T(0);
      continue;
    }
    std::int64_t a[1], b[1];
    outer.offsets(o, a);
    inner.offsets(q, b);
    out[i] = x[a[0] + k * axis_stride + b[0]];
  }
}

// Over index's shape: offsets {index, x with the axis stride zeroed}.
template <typename T>
__global__ void gather_kernel(std::int64_t n, T* out, const T* x, const std::int64_t* index, std::int64_t axis_size,
                              std::int64_t axis_stride, Indexer<2> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[2];
    ix.offsets(i, off);
    std::int64_t k = index[off[0]];
    out[i] = wrap(k, axis_size) ? x[off[1] + k * axis_stride] : T(0);
  }
}

template <typename T>
__device__ __forceinline__ void add_to(T* p, T v) {
  if constexpr (std::is_same_v<T, std::int64_t>)
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));  // two's complement
  else
    atomicAdd(p, v);
}

// Over index's shape: offsets {index, values, out with the axis stride zeroed}.
template <typename T>
__global__ void scatter_kernel(bool accumulate, std::int64_t n, T* out, const std::int64_t* index, const T* values,
                               std::int64_t axis_size, std::int64_t axis_stride, Indexer<3> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[3];
    ix.offsets(i, off);
    std::int64_t k = index[off[0]];
    if (!wrap(k, axis_size)) continue;
    T* p = out + off[2] + k * axis_stride;
    if constexpr (std::is_same_v<T, bool>) *p = values[off[1]];  // the host allows no bool accumulate
    else if (accumulate) add_to(p, values[off[1]]);
    else *p = values[off[1]];
  }
}

}  // namespace pyzen::cuda::index_kernels
