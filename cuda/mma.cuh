// BF16 tensor-core helpers for sm_80 and newer: packing bfloat16 pairs, and the warp-wide
// mma.sync.m16n8k16 (bf16 inputs, float32 accumulators) with PTX's fragment layout.
// With g = lane / 4 and t = lane % 4, each thread of the warp holds
//   A (16 x 16, row-major):  a[0] = A[g][2t, 2t+1]     a[1] = A[g+8][2t, 2t+1]
//                            a[2] = A[g][2t+8, 2t+9]   a[3] = A[g+8][2t+8, 2t+9]
//   B (16 x 8):              b0 = B[2t, 2t+1][g]       b1 = B[2t+8, 2t+9][g]
//   C, D (16 x 8, float32):  c[0..1] = C[g][2t, 2t+1]  c[2..3] = C[g+8][2t, 2t+1]
// two bfloat16 per 32-bit register, the lower index in the low half. So the accumulators
// of two neighbouring 16 x 8 tiles are, rounded and packed, an A fragment: the scores of
// attention feed the next product without a trip through shared memory.
// cuda/host/cuda_runtime.h defines PYZEN_HOST_CHECK and emulates mma_bf16 and the
// shuffle on the CPU with this layout, so cuda/host_check_training.cpp can run the kernels.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "bf16.cuh"

namespace pyzen::cuda {

// Two bfloat16 in one register: lo in bits 0-15, hi in bits 16-31.
__device__ __forceinline__ std::uint32_t pack_bf16(float lo, float hi) {
  return std::uint32_t(bf16_bits(lo)) | (std::uint32_t(bf16_bits(hi)) << 16);
}
__device__ __forceinline__ std::uint32_t pack_bits(std::uint16_t lo, std::uint16_t hi) {
  return std::uint32_t(lo) | (std::uint32_t(hi) << 16);
}

// Two neighbouring bfloat16 as one register (p 4-byte aligned).
__device__ __forceinline__ std::uint32_t ld_pair(const std::uint16_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const std::uint32_t*>(p);
#else
  std::uint32_t u;
  std::memcpy(&u, p, 4);
  return u;
#endif
}

// The A fragment of rows (r, r + 8) and columns [c, c + 16) of a row-major bfloat16 matrix
// with rows of `stride` elements (t = lane % 4).
__device__ __forceinline__ void a_fragment(std::uint32_t (&a)[4], const std::uint16_t* m, int stride, int r, int c, int t) {
  const std::uint16_t* p = m + r * stride + c + 2 * t;
  a[0] = ld_pair(p);
  a[1] = ld_pair(p + 8 * stride);
  a[2] = ld_pair(p + 8);
  a[3] = ld_pair(p + 8 * stride + 8);
}

// c += A B for one 16 x 8 x 16 tile, warp-wide (every lane of the warp must call it).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#elif defined(PYZEN_HOST_CHECK)
  host_mma_bf16(c, a, b0, b1);
#endif
}

// Max and sum over the 4 lanes of a quad (the threads that share an accumulator row).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

}  // namespace pyzen::cuda
