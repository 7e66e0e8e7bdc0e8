// Random numbers from Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11), written out here: a counter-based generator, so thread t computes its
// numbers from (key = seed, counter = (t, offset)) alone, with no state to carry between
// calls. The Python layer draws a fresh 64-bit seed and offset from pyzen's CPU generator
// for every call, so pyzen.manual_seed makes CUDA draws reproducible.
//
// Each Philox call gives four 32-bit words: four float32 uniforms (24 bits each), two
// float64 uniforms (53 bits each), normals by Box-Muller on pairs of uniforms, or two
// int64 in [low, high) (64 bits modulo the range: bias below 2^-30 for ranges below 2^34).
// Speed: not yet measured.
#include <cstdint>
#include <type_traits>

#include "common.cuh"
#include "kernels.h"
#include "philox.cuh"

namespace pyzen::cuda {
namespace {

// [0, 1) from 24 or 53 random bits.
__device__ __forceinline__ float uniform_f(std::uint32_t a) { return (a >> 8) * (1.0f / 16777216.0f); }
__device__ __forceinline__ double uniform_d(std::uint32_t a, std::uint32_t b) {
  const std::uint64_t bits = ((static_cast<std::uint64_t>(a) << 32) | b) >> 11;
  return bits * (1.0 / 9007199254740992.0);
}

enum class Kind { uniform, normal };

// Thread t fills elements [t * per, t * per + per) with per = 4 (float32) or 2 (float64).
template <typename T>
__global__ void random_kernel(Kind kind, std::int64_t n, T* out, std::uint64_t seed, std::uint64_t offset) {
  constexpr int per = std::is_same_v<T, float> ? 4 : 2;
  const std::int64_t calls = (n + per - 1) / per;
  for (std::int64_t t = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; t < calls;
       t += std::int64_t(gridDim.x) * blockDim.x) {
    const U4 r = philox(static_cast<std::uint64_t>(t), offset, seed);
    T u[per];
    if constexpr (per == 4) {
      u[0] = uniform_f(r.x), u[1] = uniform_f(r.y), u[2] = uniform_f(r.z), u[3] = uniform_f(r.w);
    } else {
      u[0] = uniform_d(r.x, r.y), u[1] = uniform_d(r.z, r.w);
    }
    if (kind == Kind::normal) {
#pragma unroll
      for (int p = 0; p < per; p += 2) {  // Box-Muller: 1 - u is in (0, 1], so log is finite
        const T radius = sqrt(T(-2) * log(T(1) - u[p]));
        const T angle = T(6.283185307179586) * u[p + 1];
        u[p] = radius * cos(angle);
        u[p + 1] = radius * sin(angle);
      }
    }
#pragma unroll
    for (int p = 0; p < per; ++p) {
      const std::int64_t i = t * per + p;
      if (i < n) out[i] = u[p];
    }
  }
}

__global__ void random_int_kernel(std::int64_t n, std::int64_t* out, std::int64_t low, std::uint64_t range,
                                  std::uint64_t seed, std::uint64_t offset) {
  const std::int64_t calls = (n + 1) / 2;
  for (std::int64_t t = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; t < calls;
       t += std::int64_t(gridDim.x) * blockDim.x) {
    const U4 r = philox(static_cast<std::uint64_t>(t), offset, seed);
    const std::uint64_t v0 = (static_cast<std::uint64_t>(r.x) << 32) | r.y;
    const std::uint64_t v1 = (static_cast<std::uint64_t>(r.z) << 32) | r.w;
    out[2 * t] = low + static_cast<std::int64_t>(v0 % range);
    if (2 * t + 1 < n) out[2 * t + 1] = low + static_cast<std::int64_t>(v1 % range);
  }
}

void launch(Kind kind, const Array& out, std::uint64_t seed, std::uint64_t offset) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  PYZEN_DISPATCH_FLOAT(out.dtype, "random", {
    constexpr int per = std::is_same_v<scalar_t, float> ? 4 : 2;
    random_kernel<scalar_t><<<grid_for((n + per - 1) / per), kThreads>>>(kind, n, static_cast<scalar_t*>(out.data()),
                                                                         seed, offset);
  });
  check_launch("random", "random_kernel");
}

}  // namespace

void random_uniform(const Array& out, std::uint64_t seed, std::uint64_t offset) {
  launch(Kind::uniform, out, seed, offset);
}

void random_normal(const Array& out, std::uint64_t seed, std::uint64_t offset) {
  launch(Kind::normal, out, seed, offset);
}

void random_int(const Array& out, std::int64_t low, std::int64_t high, std::uint64_t seed, std::uint64_t offset) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const auto range = static_cast<std::uint64_t>(high) - static_cast<std::uint64_t>(low);
  random_int_kernel<<<grid_for((n + 1) / 2), kThreads>>>(n, static_cast<std::int64_t*>(out.data()), low, range, seed,
                                                         offset);
  check_launch("random_int", "random_int_kernel");
}

}  // namespace pyzen::cuda
