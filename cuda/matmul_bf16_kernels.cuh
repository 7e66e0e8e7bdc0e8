// matmul with bfloat16 inputs on tensor cores (sm_80+), for autocast: out (float32) = a b
// with a and b rounded to bfloat16 and products accumulated in float32. In a header of its
// own so that cuda/host_check.cpp can also run it on the CPU.
//
// Two steps. A pack kernel rounds each operand into a dense bfloat16 copy with the K dim
// contiguous and padded with zeros to a multiple of 32: a as (batch, M, Kp), b transposed
// as (batch, N, Kp); any input strides (transposed views, broadcast batches) are read
// there, once. Then the GEMM: a 256-thread block owns a 128 x 128 tile of out, each of its
// 8 warps a 64 x 32 piece (4 x 4 mma.m16n8k16 per 16-wide K step). K steps of 32 stage
// 128 x 32 slices of both operands in shared memory (rows padded to 40 so that fragment
// loads hit 32 distinct banks), loaded with 16-byte moves into registers while the
// current slice is computed (two shared buffers, one barrier per step). Every fragment is
// a pair of neighbouring bfloat16 (K-contiguous operands): no ldmatrix, no transposes.
// Cost: 2 M N K FLOPs on tensor cores; the packs read a and b once (4 bytes per element)
// and write 2. No cp.async pipelining yet. nvcc 13, sm_90: 136 registers, no spills, 40 KiB
// of static shared memory: one block (8 warps) per SM.
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "mma.cuh"

namespace pyzen::cuda::matmul_bf16_kernels {

constexpr int kTile = 128, kStep = 32, kPad = kStep + 8, kBlock = 256;

// dst (batches, rows, kp) bfloat16 = src rows x k (strides s_row, s_k from each batch's
// offset), zeros for k >= K.
__global__ void pack_bf16_kernel(std::int64_t total, std::int64_t rows, std::int64_t K, std::int64_t kp, const float* src,
                                 std::int64_t s_row, std::int64_t s_k, Indexer<1> batch, std::uint16_t* dst) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t k = i % kp, r = (i / kp) % rows, b = i / kp / rows;
    std::int64_t off[1];
    batch.offsets(b, off);
    dst[i] = k < K ? bf16_bits(src[off[0] + r * s_row + k * s_k]) : std::uint16_t(0);
  }
}

// out (batches, M, N) = a (batches, M, kp) times b^T, b given as (batches, N, kp); kp a
// multiple of kStep.
__global__ void __launch_bounds__(kBlock)
    matmul_bf16_kernel(int M, int N, int kp, const std::uint16_t* a, const std::uint16_t* b, float* out,
                       std::int64_t batches) {
  __shared__ __align__(16) std::uint16_t as[2][kTile][kPad], bs[2][kTile][kPad];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int wm = (warp / 4) * 64, wn = (warp % 4) * 32;  // the warp's piece of the tile
  const int m0 = blockIdx.x * kTile, n0 = blockIdx.y * kTile;
  const int steps = kp / kStep;
  for (std::int64_t batch = blockIdx.z; batch < batches; batch += gridDim.z) {
    const std::uint16_t* ab = a + batch * M * kp;
    const std::uint16_t* bb = b + batch * N * kp;
    float acc[4][4][4] = {};
    uint4 ra[2], rb[2];  // this thread's share of the next slices: 2 x 8 bfloat16 of each
    auto fetch = [&](int k0) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int e = threadIdx.x + j * kBlock, r = e / 4, c = k0 + (e % 4) * 8;
        ra[j] = m0 + r < M ? *reinterpret_cast<const uint4*>(ab + std::int64_t(m0 + r) * kp + c) : make_uint4(0, 0, 0, 0);
        rb[j] = n0 + r < N ? *reinterpret_cast<const uint4*>(bb + std::int64_t(n0 + r) * kp + c) : make_uint4(0, 0, 0, 0);
      }
    };
    auto stash = [&](int buf) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int e = threadIdx.x + j * kBlock, r = e / 4, c = (e % 4) * 8;
        *reinterpret_cast<uint4*>(&as[buf][r][c]) = ra[j];
        *reinterpret_cast<uint4*>(&bs[buf][r][c]) = rb[j];
      }
    };
    fetch(0);
    stash(0);
    __syncthreads();
    for (int s = 0; s < steps; ++s) {
      const int cur = s & 1;
      if (s + 1 < steps) fetch((s + 1) * kStep);
#pragma unroll
      for (int kk = 0; kk < kStep; kk += 16) {
        std::uint32_t af[4][4];
#pragma unroll
        for (int mi = 0; mi < 4; ++mi) a_fragment(af[mi], &as[cur][0][0], kPad, wm + mi * 16 + g, kk, t);
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          const std::uint16_t* p = &bs[cur][wn + ni * 8 + g][kk + 2 * t];
          const std::uint32_t b0 = ld_pair(p), b1 = ld_pair(p + 8);
#pragma unroll
          for (int mi = 0; mi < 4; ++mi) mma_bf16(acc[mi][ni], af[mi], b0, b1);
        }
      }
      if (s + 1 < steps) stash(cur ^ 1);
      __syncthreads();
    }
    float* ob = out + batch * std::int64_t(M) * N;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int m = m0 + wm + mi * 16 + g + 8 * (e / 2), n = n0 + wn + ni * 8 + 2 * t + (e & 1);
          if (m < M && n < N) ob[std::int64_t(m) * N + n] = acc[mi][ni][e];
        }
  }
}

}  // namespace pyzen::cuda::matmul_bf16_kernels
