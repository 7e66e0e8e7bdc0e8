// AVX2+FMA micro-kernels for matmul (compiled with -mavx2 -mfma; called only when
// cpu_features reports avx2). Algorithm: outer-product register blocking, see
// matmul_ukernel.h. float32: 6x16 tile = 12 ymm accumulators + 2 B vectors + 1 broadcast
// (15 of 16 registers); per k step 2 loads + 6 broadcasts feed 12 FMAs (192 FLOPs).
// float64: 6x8 tile, same register plan (96 FLOPs per k step).
// Measured 2026-11-22, AMD EPYC (Zen 3) 2 vCPUs, float32 1 thread: the micro-kernel alone
// (hot caches, kc 64..384) 96-101 GFLOP/s of a 103 GFLOP/s FMA peak; whole matmul 82-92
// GFLOP/s (matmul.cpp). Inner loop: 2 loads + 6 broadcasts + 12 FMAs, no spills (asm).
#include <immintrin.h>

#include "kernels/matmul_ukernel.h"

namespace {

struct Avx2F32 {
  using scalar = float;
  using reg = __m256;
  static constexpr int width = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg broadcast(float x) { return _mm256_set1_ps(x); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static float fma1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
};

struct Avx2F64 {
  using scalar = double;
  using reg = __m256d;
  static constexpr int width = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
  static reg broadcast(double x) { return _mm256_set1_pd(x); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static double fma1(double a, double b, double c) { return __builtin_fma(a, b, c); }
};

}  // namespace

namespace pyzen::matmul_detail {

Kernels<float> sgemm_kernels_avx2() { return make_gemm_kernels<Avx2F32, 6, 2>(); }
Kernels<double> dgemm_kernels_avx2() { return make_gemm_kernels<Avx2F64, 6, 2>(); }

}  // namespace pyzen::matmul_detail
