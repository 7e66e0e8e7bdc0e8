// The register-blocked micro-kernel shared by every ISA: each ISA file instantiates it with
// its own vector type, so the AVX-512 kernel (which CI may never run) is the same code as
// the AVX2 one with wider registers.
//
// Computes an MR x NR tile  C = (accumulate ? C : 0) + Apanel . Bpanel  where
//   Apanel is packed k-major: a[p*MR + i] = A(i, p), p < kc
//   Bpanel is packed k-major: b[p*NR + j] = B(p, j), NR = NV * V::width
// The sum over p is done in registers from zero and added to C once, so a tile computed
// into a scratch buffer (matrix edges) gives bit-identical results to one computed in place.
//
// Everything here has internal linkage (anonymous namespace) on purpose: this header is
// compiled with different -m flags in different files, and inline functions with external
// linkage would let the linker keep an AVX-512 copy for the generic code.
#pragma once

#include <cstdint>

namespace {

template <class V, int MR, int NV>
inline void gemm_ukernel(int64_t kc, const typename V::scalar* __restrict a,
                         const typename V::scalar* __restrict b, typename V::scalar* __restrict c,
                         int64_t ldc, bool accumulate) {
  constexpr int W = V::width;
  typename V::reg acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();

  for (int64_t p = 0; p < kc; ++p) {
    typename V::reg bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const typename V::reg ai = V::broadcast(a[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(ai, bv[j], acc[i][j]);
    }
    a += MR;
    b += NV * W;
  }

#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      typename V::scalar* cij = c + i * ldc + j * W;
      V::store(cij, accumulate ? V::add(V::load(cij), acc[i][j]) : acc[i][j]);
    }
}

}  // namespace

namespace pyzen::matmul_detail {

template <typename T>
using UkernelFn = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate);

// Defined in matmul_avx2.cpp / matmul_avx512.cpp (x86-64 builds only).
void sgemm_ukernel_avx2(int64_t, const float*, const float*, float*, int64_t, bool);    // 6 x 16
void dgemm_ukernel_avx2(int64_t, const double*, const double*, double*, int64_t, bool);  // 6 x 8
void sgemm_ukernel_avx512(int64_t, const float*, const float*, float*, int64_t, bool);    // 12 x 32
void dgemm_ukernel_avx512(int64_t, const double*, const double*, double*, int64_t, bool);  // 12 x 16

}  // namespace pyzen::matmul_detail
