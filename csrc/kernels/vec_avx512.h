// Avx512F32 / Avx512F64: the AVX-512 register wrappers that the matmul and attention templates
// (matmul_ukernel.h, attention_impl.h) are instantiated with. Include only from files
// compiled with -mavx512f/dq/vl/bw -mfma; the structs live in an anonymous namespace, so each such file
// keeps its own copy.
#pragma once

#include <immintrin.h>

namespace {

struct Avx512F32 {
  using scalar = float;
  using reg = __m512;
  static constexpr int width = 16;
  static constexpr float lowest = -3.40282346638528859812e+38f;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg broadcast(float x) { return _mm512_set1_ps(x); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static float fma1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
  // Same algorithm and constants as Avx2F32::exp2.
  static reg exp2(reg x) {
    const reg xc = _mm512_max_ps(_mm512_set1_ps(-127.0f), x);
    const reg n = _mm512_roundscale_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const reg r = _mm512_sub_ps(xc, n);
    reg p = _mm512_set1_ps(1.534580430e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.339993116e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.618488986e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.550328777e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.402264689e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.931472057e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
  }
};

struct Avx512F64 {
  using scalar = double;
  using reg = __m512d;
  static constexpr int width = 8;
  static constexpr double lowest = -1.79769313486231570815e+308;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static reg broadcast(double x) { return _mm512_set1_pd(x); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_pd(a, b); }
  static double fma1(double a, double b, double c) { return __builtin_fma(a, b, c); }
  static reg exp2(reg x) {
    alignas(64) double t[width];
    _mm512_store_pd(t, x);
    for (double& v : t) v = __builtin_exp2(v);
    return _mm512_load_pd(t);
  }
};

}  // namespace
