// The register-blocked micro-kernel and the packing routines shared by every ISA: each ISA
// file instantiates them with its own vector type, so the AVX-512 kernel (which CI may never
// run) is the same code as the AVX2 one with wider registers.
//
// gemm_ukernel computes an MR x NR tile  C = (accumulate ? C : 0) + A . B  where
//   A(i, p) = a[p*lda + i]   (lda = MR for a packed sliver; the column stride of a
//                             column-major A read in place)
//   B(p, j) = b[p*ldb + j]   (ldb = NR for a packed sliver; the row stride of a row-major B
//                             read in place), NR = NV * V::width, p < kc
// The sum over p is done in registers from zero and added to C once, so a tile computed
// into a scratch buffer (matrix edges) and a tile read from a packed or an unpacked operand
// give bit-identical results.
//
// Everything here has internal linkage (anonymous namespace) on purpose: this header is
// compiled with different -m flags in different files, and inline functions with external
// linkage would let the linker keep an AVX-512 copy for the generic code.
#pragma once

#include <cstdint>

namespace pyzen::matmul_detail {

// One ISA's kernel set, as the driver (matmul.cpp) uses it. T is the operands' and C's
// element type; P the packed operands' type: T itself, or bfloat16 bits (uint16_t) for the
// kernels that round float32 operands to bfloat16 while packing.
//   kc_max: the largest K-block. Each K-block is one pass over C, so larger is better until
//           the B sliver (kc x NR) falls out of the cache that feeds the kernel (measured per
//           kernel: see the ISA files).
//   kq: packed K is padded with zeros to a multiple of kq (the bfloat16 kernels' K step).
//   in_place: the micro-kernel can read a column-major A or row-major B without packing.
//   rows: the matrix-vector kernel (no packing), or nullptr to take the blocked path.
//   enter/leave: per-thread set-up around a call (AMX's tile configuration), or nullptr.
template <typename T, typename P = T>
struct Kernels {
  int mr, nr, kc_max, kq;
  bool in_place;
  void (*ukernel)(int64_t kc, const P* a, int64_t lda, const P* b, int64_t ldb, T* c,
                  int64_t ldc, bool accumulate);
  void (*pack_a)(P* dst, const T* a, int64_t rs, int64_t cs, int m, int64_t kc);
  void (*pack_b)(P* dst, const T* b, int64_t rs, int64_t cs, int n, int64_t kc);
  void (*rows)(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_rs, int64_t a_cs,
               const T* b, int64_t b_rs, T* c, int64_t ldc);
  void (*enter)();
  void (*leave)();
};

// Defined in matmul_avx2.cpp / matmul_avx512.cpp (x86-64 builds only).
Kernels<float> sgemm_kernels_avx2();    // 6 x 16
Kernels<double> dgemm_kernels_avx2();   // 6 x 8
Kernels<float> sgemm_kernels_avx512();  // 12 x 32
Kernels<double> dgemm_kernels_avx512(); // 12 x 16
// float32 operands rounded to bfloat16, float32 accumulation: matmul_amx.cpp (AMX tiles,
// TDPBF16PS) and matmul_avx512bf16.cpp (VDPBF16PS).
Kernels<float, uint16_t> sbgemm_kernels_amx();         // 32 x 32
Kernels<float, uint16_t> sbgemm_kernels_avx512bf16();  // 12 x 32

}  // namespace pyzen::matmul_detail

namespace {

template <class V, int MR, int NV>
inline void gemm_ukernel(int64_t kc, const typename V::scalar* __restrict a, int64_t lda,
                         const typename V::scalar* __restrict b, int64_t ldb,
                         typename V::scalar* __restrict c, int64_t ldc, bool accumulate) {
  constexpr int W = V::width;
  typename V::reg acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
    // The tile of C is read (accumulate) or written at the end: start fetching it now.
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + NV * W - 1, 1);
  }

#pragma GCC unroll 4
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
    a += lda;
    b += ldb;
  }

#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      typename V::scalar* cij = c + i * ldc + j * W;
      V::store(cij, accumulate ? V::add(V::load(cij), acc[i][j]) : acc[i][j]);
    }
}

// Pack rows [0, m) x cols [0, kc) of a strided A (element (i, p) at a[i*rs + p*cs]) into one
// MR-tall k-major sliver dst[p*MR + i], zero-padding rows m..MR-1. MR is a compile-time
// constant so the row loop unrolls into straight loads and stores.
template <typename T, int MR>
inline void gemm_pack_a(T* __restrict dst, const T* __restrict a, int64_t rs, int64_t cs, int m,
                        int64_t kc) {
  if (m == MR && cs == 1) {  // row-major A: MR row streams, one element each per k
    for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) dst[p * MR + i] = a[i * rs + p];
  } else if (m == MR && rs == 1) {  // column-major A: MR contiguous elements per k
    for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) dst[p * MR + i] = a[p * cs + i];
  } else {
    for (int64_t p = 0; p < kc; ++p) {
      for (int i = 0; i < m; ++i) dst[p * MR + i] = a[i * rs + p * cs];
      for (int i = m; i < MR; ++i) dst[p * MR + i] = T(0);
    }
  }
}

// Pack rows [0, kc) x cols [0, n) of a strided B (element (p, j) at b[p*rs + j*cs]) into
// ceil(n / NR) consecutive NR-wide k-major slivers (sliver s at dst + s*NR*kc, element
// dst[s*NR*kc + p*NR + j]), zero-padding the last sliver's columns to NR.
template <typename T, int NR>
inline void gemm_pack_b(T* __restrict dst, const T* __restrict b, int64_t rs, int64_t cs, int n,
                        int64_t kc) {
  const int full = n / NR, tail = n - full * NR;
  if (cs == 1) {  // row-major B: walk each row once, across all slivers (sequential reads)
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = b + p * rs;
      T* d = dst + p * NR;
      for (int s = 0; s < full; ++s)
#pragma GCC unroll 64
        for (int j = 0; j < NR; ++j) d[s * NR * kc + j] = src[s * NR + j];
    }
  } else if (rs == 1) {  // column-major B (a transposed view): NR column streams per sliver
    for (int s = 0; s < full; ++s)
      for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 64
        for (int j = 0; j < NR; ++j) dst[s * NR * kc + p * NR + j] = b[(s * NR + j) * cs + p];
  } else {
    for (int s = 0; s < full; ++s)
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) dst[s * NR * kc + p * NR + j] = b[p * rs + (s * NR + j) * cs];
  }
  if (tail > 0) {
    T* d = dst + full * NR * kc;
    const T* src = b + full * NR * cs;
    for (int64_t p = 0; p < kc; ++p) {
      for (int j = 0; j < tail; ++j) d[p * NR + j] = src[p * rs + j * cs];
      for (int j = tail; j < NR; ++j) d[p * NR + j] = T(0);
    }
  }
}

// C (m x n, row stride ldc) = A . B for tiny problems and matrix-vector products, with no
// packing: A is read in place through (a_rs, a_cs), B through its row stride b_rs and must
// have unit column stride. Each C row is built in memory, one row of B at a time (chunks of
// JB columns stay in L1 across p; B is streamed in address order), so every element of C
// is one FMA chain over p = 0..k-1 in order, and the columns give plenty of independent work.
template <class V>
void gemm_rows(int64_t m, int64_t n, int64_t k, const typename V::scalar* a, int64_t a_rs,
               int64_t a_cs, const typename V::scalar* b, int64_t b_rs, typename V::scalar* c,
               int64_t ldc) {
  using T = typename V::scalar;
  constexpr int W = V::width;
  constexpr int64_t JB = 2048;
  for (int64_t j0 = 0; j0 < n; j0 += JB) {
    const int64_t nj = n - j0 < JB ? n - j0 : JB, nv = nj / W * W;
    for (int64_t i = 0; i < m; ++i) {
      const T* ai = a + i * a_rs;
      T* __restrict ci = c + i * ldc + j0;
      for (int64_t j = 0; j < nj; ++j) ci[j] = T(0);
      for (int64_t p = 0; p < k; ++p) {
        const T x = ai[p * a_cs];
        const typename V::reg xv = V::broadcast(x);
        const T* __restrict bp = b + p * b_rs + j0;
        int64_t j = 0;
#pragma GCC unroll 4
        for (; j < nv; j += W) V::store(ci + j, V::fma(xv, V::load(bp + j), V::load(ci + j)));
        for (; j < nj; ++j) ci[j] = V::fma1(x, bp[j], ci[j]);
      }
    }
  }
}

template <class V, int MR, int NV, int KC>
pyzen::matmul_detail::Kernels<typename V::scalar> make_gemm_kernels() {
  using T = typename V::scalar;
  constexpr int NR = NV * V::width;
  return {MR, NR, KC, 1, true, gemm_ukernel<V, MR, NV>, gemm_pack_a<T, MR>, gemm_pack_b<T, NR>,
          gemm_rows<V>, nullptr, nullptr};
}

}  // namespace
