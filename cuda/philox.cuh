// Philox4x32-10 (Salmon et al., SC'11): four 32-bit words from a 128-bit counter and a
// 64-bit key. In a header of its own so that cuda/host_check.cpp can check it against the
// Random123 known-answer vectors.
#pragma once

#include <cstdint>

#include "common.cuh"

namespace pyzen::cuda {

struct U4 {
  std::uint32_t x, y, z, w;
};

// counter and offset are the low and high 64 bits of the 128-bit counter, seed is the key.
__device__ __forceinline__ U4 philox(std::uint64_t counter, std::uint64_t offset, std::uint64_t seed) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  U4 c{static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
       static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(offset >> 32)};
  std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const std::uint32_t hi0 = __umulhi(kM0, c.x), lo0 = kM0 * c.x;
    const std::uint32_t hi1 = __umulhi(kM1, c.z), lo1 = kM1 * c.z;
    c = U4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

}  // namespace pyzen::cuda
