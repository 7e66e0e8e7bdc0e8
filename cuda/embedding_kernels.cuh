// Embedding backward without atomics: out[r] = sum of g[i] over the positions i whose index
// is r, added in increasing i, so the result is the same on every run and equals a
// sequential CPU sum (np.add.at) bit for bit. In a header of its own so that
// cuda/host_check_training.cpp can also run it on the CPU.
//
// Each position becomes the key (row << 32 | position), unique, so any correct sort orders
// them alike: the bitonic sort of sort_kernels.cuh over the keys padded to a power of two
// (n = 16384 takes 105 launches). Then one block per output row finds
// its run of keys by binary search and its threads, one per column, sum the run in order.
// Cost: the sort reads and writes 16 n bytes per launch; the sum reads g once. A row with
// many positions (a padding token) is summed by one thread per column, sequentially.
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "sort_kernels.cuh"

namespace pyzen::cuda::embedding_kernels {

constexpr std::uint64_t kPad = ~std::uint64_t(0);

// keys[i] = row << 32 | i for i < n (negative indices wrap; out-of-range ones get row =
// rows, which no output row reads); kPad for n <= i < n_pow2.
__global__ void embedding_keys_kernel(std::int64_t n, std::int64_t n_pow2, const std::int64_t* index, std::int64_t rows,
                                      std::uint64_t* keys) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n_pow2;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    if (i >= n) {
      keys[i] = kPad;
      continue;
    }
    std::int64_t r = index[i];
    if (r < 0) r += rows;
    if (r < 0 || r >= rows) r = rows;
    keys[i] = (std::uint64_t(r) << 32) | std::uint64_t(i);
  }
}

// First position in sorted keys[0, n) holding a key >= value.
__device__ __forceinline__ std::int64_t lower_bound(const std::uint64_t* keys, std::int64_t n, std::uint64_t value) {
  std::int64_t lo = 0, hi = n;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (keys[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// out (rows, cols) = for each row, the sum of g (n, cols) over its run of sorted keys.
// Blocks stride over rows; grid y covers the columns, one thread each.
template <typename T>
__global__ void embedding_sum_kernel(std::int64_t rows, std::int64_t cols, std::int64_t n, const std::uint64_t* keys,
                                     const T* g, T* out) {
  const std::int64_t c = blockIdx.y * std::int64_t(blockDim.x) + threadIdx.x;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const std::int64_t begin = lower_bound(keys, n, std::uint64_t(r) << 32);
    const std::int64_t end = lower_bound(keys, n, std::uint64_t(r + 1) << 32);
    if (c >= cols) continue;
    T acc = T(0);
    for (std::int64_t s = begin; s < end; ++s) acc += g[std::int64_t(keys[s] & 0xffffffffu) * cols + c];
    out[r * cols + c] = acc;
  }
}

}  // namespace pyzen::cuda::embedding_kernels
