// Multi-tensor reductions and updates for gradient clipping, as PyTorch's _foreach_ ops:
// foreach_sum_squares (each tensor's sum of squares, in double) and foreach_mul_ (every
// tensor times one device scalar, in place), a few launches for all of a model's
// gradients instead of several per tensor. Multi-tensor tables: multi_tensor.cuh. In a
// header of its own so that cuda/host_check_training.cpp can also run them on the CPU.
//
// Sums of squares: each chunk's threads add strided elements in order, then a tree in
// shared memory gives the chunk's partial; a second kernel adds each tensor's partials in
// chunk order. Deterministic: the same order on every run. Memory bound: reads each
// element once (4 bytes per float32 element); foreach_mul_ reads and writes it (8).
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "multi_tensor.cuh"

namespace pyzen::cuda::foreach_kernels {

template <typename T>
struct SumEntry {
  const T* x;
  std::int64_t n, first_chunk;
  std::int64_t slot;  // where its sum goes in the output
};

template <typename T>
struct MulEntry {
  T* x;
  std::int64_t n, first_chunk;
};

// partials[chunk] = the sum of the squares of the chunk's elements.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(const __grid_constant__ Table<SumEntry<T>> table, double* partials) {
  __shared__ double part[kThreads];
  for (std::int64_t chunk = blockIdx.x; chunk < table.chunks; chunk += gridDim.x) {
    const SumEntry<T>& e = table.e[entry_of(table, chunk)];
    const std::int64_t begin = (chunk - e.first_chunk) * kChunk;
    const std::int64_t end = begin + kChunk < e.n ? begin + kChunk : e.n;
    double acc = 0.0;
    for (std::int64_t i = begin + threadIdx.x; i < end; i += kThreads) acc += double(e.x[i]) * double(e.x[i]);
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
      if (int(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) partials[chunk] = part[0];
    __syncthreads();  // part is reused by the next chunk
  }
}

// out[slot of entry k] = the sum of entry k's partials, in chunk order (a thread per entry).
template <typename T>
__global__ void sum_partials_kernel(const __grid_constant__ Table<SumEntry<T>> table, const double* partials, double* out) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= table.count) return;
  const std::int64_t to = k + 1 < table.count ? table.e[k + 1].first_chunk : table.chunks;
  double sum = 0.0;
  for (std::int64_t c = table.e[k].first_chunk; c < to; ++c) sum += partials[c];
  out[table.e[k].slot] = sum;
}

// Every element of every tensor times *scale.
template <typename T>
__global__ void __launch_bounds__(kThreads) mul_kernel(const __grid_constant__ Table<MulEntry<T>> table, const T* scale) {
  const T s = *scale;
  for (std::int64_t chunk = blockIdx.x; chunk < table.chunks; chunk += gridDim.x) {
    const MulEntry<T>& e = table.e[entry_of(table, chunk)];
    const std::int64_t begin = (chunk - e.first_chunk) * kChunk;
    const std::int64_t end = begin + kChunk < e.n ? begin + kChunk : e.n;
    for (std::int64_t i = begin + threadIdx.x; i < end; i += kThreads) e.x[i] *= s;
  }
}

}  // namespace pyzen::cuda::foreach_kernels
