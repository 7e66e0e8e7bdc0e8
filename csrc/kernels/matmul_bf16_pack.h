// Packing float32 operands into bfloat16 panels for the bfloat16 matmul kernels
// (matmul_amx.cpp, matmul_avx512bf16.cpp; compiled with -mavx512f/bw/bf16).
//
// Rounding: VCVTNE2PS2BF16, round to nearest even, NaN kept (quieted), as pyzen's
// round_bf16; unlike round_bf16 it flushes float32 denormals (|x| < 1.2e-38) to signed zero,
// as PyTorch's oneDNN kernels on the same instruction do. Every operand element goes through
// that one instruction, whatever its layout, so a value rounds the same way in every path.
//
// Layouts, with kpad = kc rounded up to a multiple of 32 and zeros in the padding:
//   A sliver: kpad/32 chunks, each MR rows x 32 k (64 bytes a row), chunk c at
//             dst + c*MR*32: an AMX A tile is 16 rows of a chunk, one contiguous KiB, so the
//             kernel streams A in address order; the VDPBF16PS kernel broadcasts one
//             (k, k+1) pair of a row.
//   B sliver: kpad/2 rows of NR (k, k+1) pairs, row q holding B(2q, j) and B(2q+1, j) for
//             j < NR side by side ("VNNI" layout): an AMX B tile is 16 such rows x 16 pairs,
//             a VDPBF16PS B operand is 16 pairs.
// A column-major A or B is converted 16 x 16 pairs at a time and transposed in registers,
// so the layouts of a linear layer's forward and backward products all pack at vector speed.
//
// Everything has internal linkage: this header is compiled with different flags in
// different files (see matmul_ukernel.h).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace {

// Lanes [0, n) set, n clamped to [0, 16].
inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// 32 floats x[0..31] (first n, zeros after) as 32 bfloat16 in the same order: dword t is
// the pair (x[2t], x[2t+1]).
inline __m512i bf16_run(const float* x, int64_t n) {
  const __m512 lo = _mm512_maskz_loadu_ps(lanes(n), x);
  const __m512 hi = _mm512_maskz_loadu_ps(lanes(n - 16), x + 16);
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // low half from the second operand
}

// Two 16-float vectors as 16 pairs: dword j is (bf16(v0[j]), bf16(v1[j])).
inline __m512i bf16_pairs(__m512 v0, __m512 v1) {
  const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(v1, v0);  // words 0..15 v0, 16..31 v1
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                              24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                              16, 0);
  return _mm512_permutexvar_epi16(interleave, both);
}

// In-register transpose of a 16 x 16 matrix of dwords (r[i] lane j -> r[j] lane i):
// 32-bit and 64-bit interleaves, then two rounds of 128-bit lane shuffles.
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // r[4g + c] now holds, in 128-bit lane L, column 4L + c of rows 4g..4g+3: a 4 x 4
  // transpose of 128-bit lanes (two rounds of lane shuffles) finishes the job.
  for (int i = 0; i < 8; ++i) {
    const int a = (i / 4) * 8 + i % 4, b = a + 4;
    t[a] = _mm512_shuffle_i32x4(r[a], r[b], 0x88);
    t[b] = _mm512_shuffle_i32x4(r[a], r[b], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
  }
}

// Pack rows [0, m) x k [0, kc) of A (element (i, p) at a[i*rs + p*cs]) into an A sliver of
// MR rows (see the top of the file): row i of chunk p0/32 at dst + p0*MR + i*32.
template <int MR>
void bf16_pack_a(uint16_t* __restrict dst, const float* __restrict a, int64_t rs, int64_t cs,
                 int m, int64_t kc) {
  const int64_t kpad = (kc + 31) / 32 * 32;
  alignas(64) float tmp[32];
  if (cs == 1) {  // row-major: each row read once, in address order (one stream, not MR)
    for (int i = 0; i < MR; ++i)
      for (int64_t p0 = 0; p0 < kpad; p0 += 32)
        _mm512_storeu_si512(dst + p0 * MR + i * 32,
                            i < m ? bf16_run(a + i * rs + p0, kc - p0) : _mm512_setzero_si512());
    return;
  }
  for (int64_t p0 = 0; p0 < kpad; p0 += 32) {
    const int64_t kn = std::min<int64_t>(32, kc - p0);
    if (rs == 1) {  // column-major: 16 rows of pairs at a time, transposed
      for (int i0 = 0; i0 < MR; i0 += 16) {
        const __mmask16 rows = lanes(m - i0);
        __m512i r[16];
        for (int t = 0; t < 16; ++t) {
          const float* x = a + i0 + (p0 + 2 * t) * cs;
          const __m512 v0 = 2 * t < kn ? _mm512_maskz_loadu_ps(rows, x) : _mm512_setzero_ps();
          const __m512 v1 = 2 * t + 1 < kn ? _mm512_maskz_loadu_ps(rows, x + cs) : _mm512_setzero_ps();
          r[t] = bf16_pairs(v0, v1);
        }
        transpose16(r);
        for (int i = 0; i < 16 && i0 + i < MR; ++i) _mm512_storeu_si512(dst + p0 * MR + (i0 + i) * 32, r[i]);
      }
      continue;
    }
    for (int i = 0; i < MR; ++i) {  // any strides: gathered into a buffer first
      __m512i v = _mm512_setzero_si512();
      if (i < m) {
        for (int64_t p = 0; p < kn; ++p) tmp[p] = a[i * rs + (p0 + p) * cs];
        v = bf16_run(tmp, kn);
      }
      _mm512_storeu_si512(dst + p0 * MR + i * 32, v);
    }
  }
}

// Pack k [0, kc) x columns [0, n) of B (element (p, j) at b[p*rs + j*cs]) into
// ceil(n / NR) consecutive B slivers (sliver s at dst + s*NR*kpad), zero-padded.
template <int NR>
void bf16_pack_b(uint16_t* __restrict dst, const float* __restrict b, int64_t rs, int64_t cs,
                 int n, int64_t kc) {
  static_assert(NR % 16 == 0, "B slivers are whole 16-pair vectors");
  const int64_t kpad = (kc + 31) / 32 * 32;
  const int n_sl = (n + NR - 1) / NR;
  if (cs == 1) {  // row-major: two rows at a time across all slivers (sequential reads)
    for (int64_t q = 0; q < kpad / 2; ++q) {
      const float* r0 = b + 2 * q * rs;
      const float* r1 = 2 * q + 1 < kc ? r0 + rs : nullptr;
      for (int j0 = 0; j0 < n_sl * NR; j0 += 16) {
        const __mmask16 cols = 2 * q < kc ? lanes(n - j0) : 0;
        const __m512 v0 = _mm512_maskz_loadu_ps(cols, r0 + j0);
        const __m512 v1 = r1 ? _mm512_maskz_loadu_ps(cols, r1 + j0) : _mm512_setzero_ps();
        uint16_t* d = dst + (j0 / NR) * NR * kpad + q * NR * 2 + (j0 % NR) * 2;
        _mm512_storeu_si512(d, bf16_pairs(v0, v1));
      }
    }
    return;
  }
  alignas(64) float tmp[2][16];
  for (int s = 0; s < n_sl; ++s) {
    uint16_t* d = dst + s * NR * kpad;
    for (int j0 = s * NR; j0 < s * NR + NR; j0 += 16) {
      const __mmask16 cols = lanes(n - j0);
      const int cn = static_cast<int>(std::clamp(n - j0, 0, 16));
      uint16_t* dj = d + (j0 - s * NR) * 2;
      if (rs == 1) {  // column-major: each column's k run as pairs, transposed
        for (int64_t p0 = 0; p0 < kpad; p0 += 32) {
          const int64_t kn = std::min<int64_t>(32, kc - p0);
          __m512i r[16];
          for (int j = 0; j < 16; ++j)
            r[j] = j < cn ? bf16_run(b + (j0 + j) * cs + p0, kn) : _mm512_setzero_si512();
          transpose16(r);
          for (int t = 0; t < 16; ++t) _mm512_storeu_si512(dj + (p0 / 2 + t) * NR * 2, r[t]);
        }
        continue;
      }
      for (int64_t q = 0; q < kpad / 2; ++q) {  // any strides: gathered into a buffer first
        __m512 v[2];
        for (int h = 0; h < 2; ++h) {
          const int64_t p = 2 * q + h;
          for (int j = 0; j < cn && p < kc; ++j) tmp[h][j] = b[p * rs + (j0 + j) * cs];
          v[h] = p < kc ? _mm512_maskz_loadu_ps(cols, tmp[h]) : _mm512_setzero_ps();
        }
        _mm512_storeu_si512(dj + q * NR * 2, bf16_pairs(v[0], v[1]));
      }
    }
  }
}

}  // namespace
