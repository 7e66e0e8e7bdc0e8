// Shared device-side helpers for the pyzen CUDA kernels: strided indexing over up to
// kMaxDims dims, launch sizes, dtype dispatch and NaN-aware comparisons.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "array.h"

namespace pyzen::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items (n > 0).
inline unsigned grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 * 16 ? blocks : 65536 * 16);
}

// Maps the linear index of an element of a shape (C order) to the element offsets of N
// operands with that shape and their own strides. Built on the host with dims coalesced:
// size-1 dims dropped, neighbouring dims merged where every operand allows it, so
// contiguous operands index as one flat dim.
template <int N>
struct Indexer {
  int ndim = 0;
  std::int64_t shape[kMaxDims];
  std::int64_t strides[N][kMaxDims];

  __device__ __forceinline__ void offsets(std::int64_t linear, std::int64_t (&off)[N]) const {
#pragma unroll
    for (int a = 0; a < N; ++a) off[a] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const std::int64_t s = shape[d];
      const std::int64_t i = linear % s;
      linear /= s;
#pragma unroll
      for (int a = 0; a < N; ++a) off[a] += i * strides[a][d];
    }
  }
};

// `shape` with one stride list per operand (each as long as shape).
template <int N>
Indexer<N> make_indexer(const std::vector<std::int64_t>& shape,
                        const std::vector<std::int64_t>* const (&strides)[N]) {
  Indexer<N> ix;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int k = ix.ndim;
    bool merge = k > 0;
    for (int a = 0; a < N && merge; ++a)
      merge = ix.strides[a][k - 1] == (*strides[a])[d] * shape[d];
    if (merge) {
      ix.shape[k - 1] *= shape[d];
      for (int a = 0; a < N; ++a) ix.strides[a][k - 1] = (*strides[a])[d];
    } else {
      ix.shape[k] = shape[d];
      for (int a = 0; a < N; ++a) ix.strides[a][k] = (*strides[a])[d];
      ++ix.ndim;
    }
  }
  return ix;
}

template <typename T>
__device__ __forceinline__ bool is_nan(T v) {
  return v != v;  // false for integers and bool
}

// dtype dispatch: runs `body` with `scalar_t` bound to the element type of `dtype`.
#define PYZEN_DISPATCH(dtype, op, ...)                                                   \
  switch (dtype) {                                                                       \
    case DType::f32: { using scalar_t = float; __VA_ARGS__; break; }                     \
    case DType::f64: { using scalar_t = double; __VA_ARGS__; break; }                    \
    case DType::i64: { using scalar_t = std::int64_t; __VA_ARGS__; break; }              \
    case DType::b8: { using scalar_t = bool; __VA_ARGS__; break; }                       \
    default: throw std::invalid_argument(std::string(op) + ": unsupported dtype");       \
  }

#define PYZEN_DISPATCH_FLOAT(dtype, op, ...)                                             \
  switch (dtype) {                                                                       \
    case DType::f32: { using scalar_t = float; __VA_ARGS__; break; }                     \
    case DType::f64: { using scalar_t = double; __VA_ARGS__; break; }                    \
    default: throw std::invalid_argument(std::string(op) + ": expected float32 or float64, got " + \
                                         dtype_name(dtype));                             \
  }

}  // namespace pyzen::cuda
