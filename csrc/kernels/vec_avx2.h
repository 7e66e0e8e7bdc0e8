// Avx2F32 / Avx2F64: the AVX2 register wrappers that the matmul and attention templates
// (matmul_ukernel.h, attention_impl.h) are instantiated with. Include only from files
// compiled with -mavx2 -mfma; the structs live in an anonymous namespace, so each such file
// keeps its own copy.
#pragma once

#include <immintrin.h>

namespace {

struct Avx2F32 {
  using scalar = float;
  using reg = __m256;
  static constexpr int width = 8;
  static constexpr float lowest = -3.40282346638528859812e+38f;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg broadcast(float x) { return _mm256_set1_ps(x); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static float fma1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
  // 2^x = 2^n * 2^r, n = round(x), |r| <= 1/2, 2^r by a degree-6 polynomial fitted for
  // relative error (1e-7, ~1.5 ulp). For x <= 0 (softmax arguments); below -127 the
  // exponent field becomes 0, so the result is exactly 0 (exp2(-inf) = 0); NaN stays NaN.
  static reg exp2(reg x) {
    const reg xc = _mm256_max_ps(_mm256_set1_ps(-127.0f), x);
    const reg n = _mm256_round_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const reg r = _mm256_sub_ps(xc, n);
    reg p = _mm256_set1_ps(1.534580430e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.339993116e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.618488986e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.550328777e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(2.402264689e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(6.931472057e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }
};

struct Avx2F64 {
  using scalar = double;
  using reg = __m256d;
  static constexpr int width = 4;
  static constexpr double lowest = -1.79769313486231570815e+308;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
  static reg broadcast(double x) { return _mm256_set1_pd(x); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_pd(a, b); }
  static double fma1(double a, double b, double c) { return __builtin_fma(a, b, c); }
  static reg exp2(reg x) {  // float64 is the correctness path: libm per lane
    alignas(32) double t[width];
    _mm256_store_pd(t, x);
    for (double& v : t) v = __builtin_exp2(v);
    return _mm256_load_pd(t);
  }
};

}  // namespace
