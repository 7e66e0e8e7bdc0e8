// bfloat16 as bits (std::uint16_t): conversion from and to float32, on the host and the
// device alike (attention's bfloat16 path, the round_bf16 elementwise op).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace pyzen::cuda {

// float32 -> bfloat16 bits, rounded to nearest even; nan stays a (quiet) nan.
__host__ __device__ __forceinline__ std::uint16_t bf16_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

__host__ __device__ __forceinline__ float bf16_float(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

}  // namespace pyzen::cuda
