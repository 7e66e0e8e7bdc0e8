// AVX-512 micro-kernels for matmul (compiled with -mavx512f/dq/vl/bw -mfma; called only
// when cpu_features reports avx512). The same kernel as matmul_avx2.cpp with 512-bit
// registers and twice the rows: float32 12x32 tile = 24 zmm accumulators + 2 B vectors +
// 1 broadcast (27 of 32 registers), 768 FLOPs per k step; float64 12x16 tile.
// Measured: not yet (no AVX-512 machine available when written); correctness rests on
// sharing gemm_ukernel, the packing routines and gemm_rows (matmul_ukernel.h) with the AVX2
// kernel, which the tests exercise; only the vector type and the tile size differ.
#include <immintrin.h>

#include "kernels/matmul_ukernel.h"

namespace {

struct Avx512F32 {
  using scalar = float;
  using reg = __m512;
  static constexpr int width = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg broadcast(float x) { return _mm512_set1_ps(x); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static float fma1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
};

struct Avx512F64 {
  using scalar = double;
  using reg = __m512d;
  static constexpr int width = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static reg broadcast(double x) { return _mm512_set1_pd(x); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static double fma1(double a, double b, double c) { return __builtin_fma(a, b, c); }
};

}  // namespace

namespace pyzen::matmul_detail {

Kernels<float> sgemm_kernels_avx512() { return make_gemm_kernels<Avx512F32, 12, 2>(); }
Kernels<double> dgemm_kernels_avx512() { return make_gemm_kernels<Avx512F64, 12, 2>(); }

}  // namespace pyzen::matmul_detail
