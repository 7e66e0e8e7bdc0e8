// attention_forward_bf16: autocast's attention forward on AMX tiles (compiled with -mamx-tile
// -mamx-bf16 and AVX-512 BF16; called only on the amx bfloat16 path).
//
// Algorithm: FlashAttention-2's forward with 32 x 32 tiles. q, k, v are rounded to bfloat16
// once (K and V of every batch item packed up front, as the matmul kernels pack B: K as the
// B operand of S = Q K^T, V as that of O += P V); then one task per block of 32 queries:
// S = Q K^T in four accumulator tiles (TDPBF16PS over D in steps of 32), an online softmax
// over the 32 x 32 scores in AVX-512 registers (exp2 in log2 units, running max and sum per
// query in float32), P rounded to bfloat16 (FlashAttention-2's rule, as the CUDA kernel),
// the output rescaled in memory, and O += P V tile by tile over Dv. out = O / l,
// lse = (m + log2 l) ln 2. Causal: key blocks past the diagonal are skipped, the diagonal
// block masked lane by lane.
//
// Covers the masks-free and causal calls with D, Dv <= 256 (attention_forward_bf16 refuses
// the rest; the caller then rounds the operands and runs the float32 kernel). Each task's
// sums run in a fixed order: results do not depend on the thread count.
//
// Cost: 4*n*Tq*Tk*D FLOPs (causal: half) on tiles, n*Tq*Tk exp2 in AVX-512.
// Measured 2026-12-05, Intel Xeon (Sapphire Rapids class), 2 threads: benchmarks/RESULTS.md.
#include <immintrin.h>

#include <cmath>
#include <limits>
#include <new>

#include "kernels/amx_tiles.h"
#include "kernels/attention.h"
#include "kernels/matmul_bf16_pack.h"
#include "kernels/vec_avx512.h"
#include "parallel.h"

namespace pyzen {
namespace {

constexpr int kBlock = 32;     // queries per task and keys per block
constexpr int64_t kMaxD = 256;  // largest D and Dv

int64_t pad32(int64_t x) { return (x + 31) / 32 * 32; }

struct Packed {
  uint16_t* p;
  explicit Packed(int64_t n)
      : p(static_cast<uint16_t*>(::operator new(sizeof(uint16_t) * static_cast<size_t>(n > 0 ? n : 1),
                                                std::align_val_t(64)))) {}
  ~Packed() { ::operator delete(p, std::align_val_t(64)); }
  Packed(const Packed&) = delete;
  Packed& operator=(const Packed&) = delete;
};

}  // namespace

bool attention_forward_bf16(const AttentionArgs<float>& x) {
  if (x.mask_kind != AttnMask::none || x.d > kMaxD || x.dv > kMaxD || x.d < 1 || x.dv < 1) return false;
  const int64_t dpad = pad32(x.d), dvpad = pad32(x.dv);
  const int64_t nkb = (x.tk + kBlock - 1) / kBlock, nqb = (x.tq + kBlock - 1) / kBlock;
  const int64_t k_block = kBlock * dpad, v_block = kBlock * dvpad;  // packed elements per key block
  // Allocated before any parallel region: a std::bad_alloc must not leave a thread.
  Packed kv(x.n * nkb * (k_block + v_block));
  const int threads = get_num_threads();

#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < x.n * nkb; ++t) {
    const int64_t b = t / nkb, kb = t % nkb, j0 = kb * kBlock;
    const int keys = static_cast<int>(std::min<int64_t>(kBlock, x.tk - j0));
    uint16_t* kp = kv.p + t * (k_block + v_block);
    // S = Q K^T takes K as B(p = d, j = key): column-major, one key's D values contiguous.
    bf16_pack_b<kBlock>(kp, x.k.data + x.k.offset[b] + j0 * x.k.row_stride, 1, x.k.row_stride, keys, x.d);
    // O += P V takes V as B(p = key, j = column): row-major.
    bf16_pack_b<kBlock>(kp + k_block, x.v.data + x.v.offset[b] + j0 * x.v.row_stride, x.v.row_stride, 1,
                        static_cast<int>(x.dv), keys);
  }

  const float scale_log2 = x.scale * 1.4426950408889634f;
  const float ninf = -std::numeric_limits<float>::infinity();
#pragma omp parallel num_threads(threads)
  {
    amx_enter();
    alignas(64) uint16_t qp[kBlock * kMaxD];
    alignas(64) uint16_t pp[kBlock * kBlock];
    alignas(64) float s[kBlock * kBlock];
    alignas(64) float o[kBlock * kMaxD];
    float m[kBlock], l[kBlock];
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < x.n * nqb; ++t) {
      const int64_t b = t / nqb, i0 = (t % nqb) * kBlock;
      const int rows = static_cast<int>(std::min<int64_t>(kBlock, x.tq - i0));
      bf16_pack_a<kBlock>(qp, x.q.data + x.q.offset[b] + i0 * x.q.row_stride, x.q.row_stride, 1, rows, x.d);
      for (int i = 0; i < kBlock; ++i) m[i] = ninf, l[i] = 0.f;
      for (int64_t e = 0; e < kBlock * dvpad; ++e) o[e] = 0.f;
      const int64_t kb_end = x.causal ? std::min(nkb, (i0 + rows - 1) / kBlock + 1) : nkb;
      for (int64_t kb = 0; kb < kb_end; ++kb) {
        const uint16_t* kp = kv.p + (b * nkb + kb) * (k_block + v_block);
        amx_block_32x32(qp, kBlock * 32, kp, kBlock * 32, dpad / 32, s, kBlock, false);
        const int64_t j0 = kb * kBlock;
        for (int i = 0; i < kBlock; ++i) {
          int64_t valid = std::min<int64_t>(kBlock, x.tk - j0);
          if (x.causal) valid = std::min<int64_t>(valid, i0 + i - j0 + 1);
          const __m512 s0 = _mm512_mask_mov_ps(_mm512_set1_ps(ninf), lanes(valid),
                                               _mm512_mul_ps(_mm512_load_ps(s + i * kBlock), _mm512_set1_ps(scale_log2)));
          const __m512 s1 = _mm512_mask_mov_ps(_mm512_set1_ps(ninf), lanes(valid - 16),
                                               _mm512_mul_ps(_mm512_load_ps(s + i * kBlock + 16), _mm512_set1_ps(scale_log2)));
          // Finite: the first block of every row holds key 0, which every query attends.
          const float mx = std::max(m[i], _mm512_reduce_max_ps(_mm512_max_ps(s0, s1)));
          const float alpha = std::exp2(m[i] - mx);
          const __m512 p0 = Avx512F32::exp2(_mm512_sub_ps(s0, _mm512_set1_ps(mx)));
          const __m512 p1 = Avx512F32::exp2(_mm512_sub_ps(s1, _mm512_set1_ps(mx)));
          l[i] = l[i] * alpha + _mm512_reduce_add_ps(_mm512_add_ps(p0, p1));
          m[i] = mx;
          _mm512_store_si512(pp + i * 32, (__m512i)_mm512_cvtne2ps_pbh(p1, p0));
          if (alpha != 1.f)
            for (int64_t c = 0; c < dvpad; c += 16)
              _mm512_store_ps(o + i * dvpad + c, _mm512_mul_ps(_mm512_load_ps(o + i * dvpad + c), _mm512_set1_ps(alpha)));
        }
        for (int64_t c = 0; c < dvpad; c += 32)
          amx_block_32x32(pp, 0, kp + k_block + c * kBlock, 0, 1, o + c, dvpad, true);
      }
      for (int i = 0; i < rows; ++i) {
        float* out = x.out + (b * x.tq + i0 + i) * x.dv;
        const float inv = 1.f / l[i];
        for (int64_t c = 0; c < x.dv; ++c) out[c] = o[i * dvpad + c] * inv;
        x.lse[b * x.tq + i0 + i] = (m[i] + std::log2(l[i])) * 0.6931471805599453f;
      }
    }
    amx_leave();
  }
  return true;
}

}  // namespace pyzen
