// Stand-in for <cuda_runtime.h> that lets cuda/host_check.cpp compile the device code of
// selected kernels with a host C++20 compiler and run it on the CPU: one std::thread per
// CUDA thread, __syncthreads as a std::barrier, __shared__ as function statics (one block
// runs at a time), and the warp-wide operations (__shfl_xor_sync, the bf16 mma of
// cuda/mma.cuh, with PTX's fragment layout) as exchanges through a per-warp scratch between
// two warp barriers. Slow and only for checking indexing, edges and barriers where no GPU
// is available; says nothing about speed or about the real compiler's code.
#pragma once

#define PYZEN_HOST_CHECK 1

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __grid_constant__
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct alignas(16) float4 {  // aligned like CUDA's: UBSan reports a misaligned float4 access
  float x, y, z, w;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
using std::isfinite;
template <typename T>
T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned((std::uint64_t(a) * b) >> 32); }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

inline thread_local uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<>* host_block_barrier = nullptr;
inline void __syncthreads() { host_block_barrier->arrive_and_wait(); }

// One warp's meeting point: its barrier and a slot per lane for what the lanes exchange.
struct HostWarp {
  std::barrier<>* barrier;
  float value[32];
  std::uint32_t regs[32][6];  // an mma's a[0..3], b0, b1
};
inline thread_local HostWarp* host_warp = nullptr;
inline thread_local unsigned host_lane = 0;

inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
  host_warp->value[host_lane] = v;
  host_warp->barrier->arrive_and_wait();
  const float r = host_warp->value[host_lane ^ unsigned(lane_mask)];
  host_warp->barrier->arrive_and_wait();
  return r;
}

// c += A B (16 x 8 x 16, bfloat16 in, float32 accumulate), from the fragments every lane
// holds; the element-to-lane map is cuda/mma.cuh's (PTX's) layout.
inline void host_mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  auto& r = host_warp->regs;
  for (int i = 0; i < 4; ++i) r[host_lane][i] = a[i];
  r[host_lane][4] = b0, r[host_lane][5] = b1;
  host_warp->barrier->arrive_and_wait();
  auto half = [](std::uint32_t reg, int k) {
    const std::uint32_t bits = (k & 1 ? reg >> 16 : reg & 0xffffu) << 16;
    float x;
    std::memcpy(&x, &bits, 4);
    return x;
  };
  auto a_at = [&](int row, int k) {  // A[row][k]: lane 4 (row % 8) + (k % 8) / 2, register by row and k halves
    return half(r[(row % 8) * 4 + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)], k);
  };
  auto b_at = [&](int k, int col) { return half(r[col * 4 + (k % 8) / 2][4 + (k >= 8)], k); };
  const int g = int(host_lane) / 4, t = int(host_lane) % 4;
  for (int e = 0; e < 4; ++e) {
    const int row = g + 8 * (e / 2), col = 2 * t + (e & 1);
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k) sum += a_at(row, k) * b_at(k, col);
    c[e] += sum;
  }
  host_warp->barrier->arrive_and_wait();
}

// Runs kernel(args...) over the grid, block after block, each block's threads in parallel:
// one std::thread per CUDA thread of a block, reused for every block, with a barrier
// between blocks (their __shared__ statics are the same memory).
template <typename Kernel, typename... Args>
void host_launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
  gridDim = grid;
  blockDim = block;
  const unsigned n = block.x * block.y * block.z;
  std::barrier<> barrier(n);
  host_block_barrier = &barrier;
  std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
  std::vector<HostWarp> warps((n + 31) / 32);
  for (unsigned w = 0; w < warps.size(); ++w) {
    warp_barriers.push_back(std::make_unique<std::barrier<>>(std::ptrdiff_t(n - 32 * w < 32 ? n - 32 * w : 32)));
    warps[w].barrier = warp_barriers.back().get();
  }
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
      host_warp = &warps[t / 32];
      host_lane = t % 32;
      for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
          for (unsigned bx = 0; bx < grid.x; ++bx) {
            blockIdx = {bx, by, bz};
            kernel(args...);
            barrier.arrive_and_wait();  // the block is done before the next one starts
          }
    });
  for (auto& th : threads) th.join();
}
