// bfloat16 matmul micro-kernel on AVX512-BF16 (compiled with -mavx512f/bw/bf16; called only
// when cpu_features reports the avx512_bf16 path): for CPUs with AVX512-BF16 but no AMX
// (AMD Zen 4/5, Intel Cooper Lake), and on AMX machines when that path is forced.
//
// Algorithm: a 12 x 32 float32 C tile in 24 zmm accumulators; per (k, k+1) pair, two B
// vectors of 16 pairs and twelve broadcast A pairs feed 24 VDPBF16PS (1,536 FLOPs, twice the
// float32 kernel's per instruction). Accumulators start from C or zero and are stored once.
//
// Measured 2026-12-05, Intel Xeon (family 6 model 207, Emerald Rapids), 2 threads: VDPBF16PS
// issues one per cycle against two FMAs, half the float32 FLOP rate, so this path runs at
// ~230 GFLOP/s (the float32 kernel ~390): under autocast through the Tensor API, matmul
// 1024^3 and 2048^3 and the 3 x Linear(1024) MLP step at 0.11-0.19x torch's autocast (AMX).
// Opt-in (cpu_features.cpp); unmeasured on AMD Zen 4/5. benchmarks/RESULTS.md.
#include <immintrin.h>

#include "kernels/matmul_bf16_pack.h"
#include "kernels/matmul_ukernel.h"

namespace pyzen::matmul_detail {
namespace {

constexpr int kMR = 12, kNR = 32;

void avx512bf16_ukernel(int64_t kpad, const uint16_t* a, int64_t, const uint16_t* b, int64_t,
                        float* c, int64_t ldc, bool accumulate) {
  __m512 acc[kMR][2];
#pragma GCC unroll 12
  for (int i = 0; i < kMR; ++i) {
    acc[i][0] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    acc[i][1] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t q = 0; q < kpad / 2; ++q) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + q * kNR * 2);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + q * kNR * 2 + 32);
#pragma GCC unroll 12
    for (int i = 0; i < kMR; ++i) {
      int32_t pair;
      __builtin_memcpy(&pair, a + (q / 16) * kMR * 32 + i * 32 + 2 * (q % 16), 4);
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < kMR; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc[i][0]);
    _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
  }
}

}  // namespace

Kernels<float, uint16_t> sbgemm_kernels_avx512bf16() {
  return {kMR, kNR, 1024, 32, false, avx512bf16_ukernel, bf16_pack_a<kMR>, bf16_pack_b<kNR>,
          nullptr, nullptr, nullptr};
}

}  // namespace pyzen::matmul_detail
