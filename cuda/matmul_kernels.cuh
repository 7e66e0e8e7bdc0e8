// The matmul kernels (see matmul.cu for the algorithm and its launch). In a header of
// their own so that cuda/host_check.cpp can also run them on the CPU, one thread per CUDA
// thread, to check their indexing where no GPU is available.
#pragma once

#include <cstdint>
#include <vector>

#include "common.cuh"

namespace pyzen::cuda::matmul_kernels {

constexpr int BM = 128, BN = 128, BK = 8;

struct Operand {
  const float* p;
  std::int64_t s0, s1;  // strides of (row, col): a (m, k), b (k, n)
  bool col_fast;        // threads run along the col index (its stride is the smaller)
  bool vec;             // float4 loads along the fast index are aligned and allowed
};

// Loads 4 elements from (row, col) on: along the col index (along_col) or the row index,
// zeros outside rows x cols. For a, rows are m and cols are k; for b, rows are k and cols n.
__device__ __forceinline__ void load4(const Operand& op, std::int64_t base, int row, int col, bool along_col,
                                      int rows, int cols, float (&v)[4]) {
  const float* p = op.p + base + row * op.s0 + col * op.s1;
  if (along_col) {
    if (op.vec && row < rows && col + 3 < cols) {
      const float4 q = *reinterpret_cast<const float4*>(p);
      v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
      return;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = (row < rows && col + j < cols) ? p[j * op.s1] : 0.0f;
  } else {
    if (op.vec && col < cols && row + 3 < rows) {
      const float4 q = *reinterpret_cast<const float4*>(p);
      v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
      return;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = (col < cols && row + j < rows) ? p[j * op.s0] : 0.0f;
  }
}

__global__ void __launch_bounds__(256) sgemm_kernel(int M, int N, int K, Operand a, Operand b, float* C,
                                                    bool vec_out, std::int64_t batches, Indexer<2> bix) {
  __shared__ __align__(16) float As[2][BK][BM];  // As[k][m]
  __shared__ __align__(16) float Bs[2][BK][BN];  // Bs[k][n]
  const int t = threadIdx.x;
  const int ty = t / 16, tx = t % 16;
  // a slice: 128 (m) x 8 (k). k-fast: thread loads m = t/2, k = (t%2)*4 + 0..3;
  // m-fast: k = t/32, m = (t%32)*4 + 0..3.
  const int a_m = a.col_fast ? t / 2 : (t % 32) * 4;
  const int a_k = a.col_fast ? (t % 2) * 4 : t / 32;
  // b slice: 8 (k) x 128 (n). n-fast: k = t/32, n = (t%32)*4 + 0..3; k-fast: n = t/2, k = (t%2)*4.
  const int b_k = b.col_fast ? t / 32 : (t % 2) * 4;
  const int b_n = b.col_fast ? (t % 32) * 4 : t / 2;
  const int ktiles = (K + BK - 1) / BK;
  const int ntiles = (N + BN - 1) / BN;
  const int bm = blockIdx.x * BM;

  for (std::int64_t batch = blockIdx.z; batch < batches; batch += gridDim.z) {
    std::int64_t boff[2];
    bix.offsets(batch, boff);
    float* Cb = C + batch * std::int64_t(M) * N;
    for (int nt = blockIdx.y; nt < ntiles; nt += gridDim.y) {
      const int bn = nt * BN;
      float acc[8][8];
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

      float ra[4], rb[4];
      auto fetch = [&](int k0) {
        load4(a, boff[0], bm + a_m, k0 + a_k, a.col_fast, M, K, ra);
        load4(b, boff[1], k0 + b_k, bn + b_n, b.col_fast, K, N, rb);
      };
      auto stash = [&](int buf) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (a.col_fast) As[buf][a_k + j][a_m] = ra[j];
          else As[buf][a_k][a_m + j] = ra[j];
          if (b.col_fast) Bs[buf][b_k][b_n + j] = rb[j];
          else Bs[buf][b_k + j][b_n] = rb[j];
        }
      };

      fetch(0);
      stash(0);
      __syncthreads();
      for (int kt = 0; kt < ktiles; ++kt) {
        const int cur = kt & 1;
        if (kt + 1 < ktiles) fetch((kt + 1) * BK);
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
          const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][kk][ty * 4]);
          const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][kk][64 + ty * 4]);
          const float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][kk][tx * 4]);
          const float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][kk][64 + tx * 4]);
          const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
          const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
          for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        if (kt + 1 < ktiles) stash(cur ^ 1);
        __syncthreads();
      }

#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int m = bm + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
        if (m >= M) continue;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int n = bn + h * 64 + tx * 4;
          float* dst = Cb + std::int64_t(m) * N + n;
          if (vec_out && n + 3 < N) {
            *reinterpret_cast<float4*>(dst) = make_float4(acc[i][h * 4], acc[i][h * 4 + 1], acc[i][h * 4 + 2], acc[i][h * 4 + 3]);
          } else {
#pragma unroll
            for (int j = 0; j < 4; ++j)
              if (n + j < N) dst[j] = acc[i][h * 4 + j];
          }
        }
      }
    }
  }
}

// Host side of the SGEMM launch, shared with cuda/host_check.cpp.
inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// An operand with strides (s0, s1) of its (row, col) and its batch strides. float4 loads
// need the fast dim to have unit stride, and the other stride, every batch stride and the
// base to keep 16-byte alignment.
inline Operand make_operand(const float* p, std::int64_t s0, std::int64_t s1, const std::vector<std::int64_t>& bstrides) {
  Operand op{p, s0, s1, false, false};
  op.col_fast = (s1 < 0 ? -s1 : s1) <= (s0 < 0 ? -s0 : s0);
  const std::int64_t unit = op.col_fast ? s1 : s0, other = op.col_fast ? s0 : s1;
  bool vec = unit == 1 && other % 4 == 0 && aligned16(p);
  for (std::int64_t st : bstrides) vec = vec && st % 4 == 0;
  op.vec = vec;
  return op;
}

inline dim3 sgemm_grid(int M, int N, unsigned gz) {
  const unsigned mtiles = (M + BM - 1) / BM, ntiles = (N + BN - 1) / BN;
  return dim3(mtiles, ntiles < 65535 ? ntiles : 65535, gz);
}

// Output rows start 16-byte aligned when N % 4 == 0 (the output is contiguous).
inline bool sgemm_vec_out(int N, const void* out) { return N % 4 == 0 && aligned16(out); }

constexpr int TS = 16;

template <typename T>
__global__ void gemm_tiled_kernel(int M, int N, int K, const T* A, std::int64_t sam, std::int64_t sak, const T* B,
                                  std::int64_t sbk, std::int64_t sbn, T* C, std::int64_t batches, Indexer<2> bix) {
  __shared__ T As[TS][TS + 1];
  __shared__ T Bs[TS][TS + 1];
  const int ty = threadIdx.y, tx = threadIdx.x;
  const int col = blockIdx.x * TS + tx;
  const int mtiles = (M + TS - 1) / TS;
  for (std::int64_t batch = blockIdx.z; batch < batches; batch += gridDim.z) {
    std::int64_t boff[2];
    bix.offsets(batch, boff);
    const T* Ab = A + boff[0];
    const T* Bb = B + boff[1];
    for (int mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
      const int row = mt * TS + ty;
      T acc = T(0);
      for (int k0 = 0; k0 < K; k0 += TS) {
        As[ty][tx] = (row < M && k0 + tx < K) ? Ab[row * sam + (k0 + tx) * sak] : T(0);
        Bs[ty][tx] = (k0 + ty < K && col < N) ? Bb[(k0 + ty) * sbk + col * sbn] : T(0);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TS; ++kk) acc += As[ty][kk] * Bs[kk][tx];
        __syncthreads();
      }
      if (row < M && col < N) C[batch * std::int64_t(M) * N + std::int64_t(row) * N + col] = acc;
    }
  }
}

}  // namespace pyzen::cuda::matmul_kernels
