// Sorting on the device: a bitonic sort of keys padded to a power of two (n log2(n)
// (log2(n) + 1) / 4 compare-exchanges in log2(n) (log2(n) + 1) / 2 launches), used by the
// embedding backward (keys: row << 32 | position) and by argsort (keys: row, value,
// position). Keys are unique, so the result does not depend on the order of equal
// values: argsort is stable, as NumPy's kind="stable". In a header of its own so that the
// host checks can also run it on the CPU.
//
// argsort: each value becomes a 64-bit code whose unsigned order is the value order
// (floats: the sign bit flipped for positives, every bit for negatives; -0.0 counted as
// 0.0 and every NaN as one largest code, as NumPy sorts them; int64: the sign bit
// flipped; bool: 0 or 1).
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common.cuh"

namespace pyzen::cuda::sort_kernels {

struct ArgKey {
  std::uint64_t row, code, index;
};

__device__ __forceinline__ bool key_less(std::uint64_t a, std::uint64_t b) { return a < b; }
__device__ __forceinline__ bool key_less(const ArgKey& a, const ArgKey& b) {
  if (a.row != b.row) return a.row < b.row;
  if (a.code != b.code) return a.code < b.code;
  return a.index < b.index;
}

// One compare-exchange stage (size, j) of the bitonic sort of n (a power of two) keys.
template <typename K>
__global__ void bitonic_step_kernel(std::int64_t n, K* keys, std::int64_t j, std::int64_t size) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t l = i ^ j;
    if (l <= i) continue;
    const K a = keys[i], b = keys[l];
    if (key_less(b, a) == ((i & size) == 0)) keys[i] = b, keys[l] = a;
  }
}

// Calls step(j, size) for every stage of a bitonic sort of n (a power of two) keys, in order.
template <typename Step>
void for_each_bitonic_step(std::int64_t n, Step step) {
  for (std::int64_t size = 2; size <= n; size <<= 1)
    for (std::int64_t j = size >> 1; j > 0; j >>= 1) step(j, size);
}

template <typename T>
__device__ __forceinline__ std::uint64_t order_code(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? 1u : 0u;
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    return std::uint64_t(v) ^ (std::uint64_t(1) << 63);
  } else {
    if (v != v) return ~std::uint64_t(0);  // nan: the largest, all alike
    if (v == T(0)) v = T(0);              // -0.0 sorts as 0.0
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    U u;
    std::memcpy(&u, &v, sizeof(T));
    const U sign = U(1) << (8 * sizeof(T) - 1);
    return std::uint64_t(u & sign ? ~u : u | sign);
  }
}

// keys[i] for the (rows, n) contiguous x: (row, code, position in row); padding past
// rows * n sorts last.
template <typename T>
__global__ void argsort_keys_kernel(std::int64_t total, std::int64_t n_pow2, std::int64_t n, const T* x, ArgKey* keys) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n_pow2;
       i += std::int64_t(gridDim.x) * blockDim.x)
    keys[i] = i < total ? ArgKey{std::uint64_t(i / n), order_code(x[i]), std::uint64_t(i % n)}
                        : ArgKey{~std::uint64_t(0), 0, 0};
}

// out[i] = the position of the i-th sorted key in its row (rows stay in place: each has n keys).
// (A template, as every kernel here: this header is in several .cu files.)
template <typename Key>
__global__ void argsort_out_kernel(std::int64_t total, const Key* keys, std::int64_t* out) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = std::int64_t(keys[i].index);
}

}  // namespace pyzen::cuda::sort_kernels
