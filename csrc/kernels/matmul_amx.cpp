// bfloat16 matmul micro-kernel on AMX tiles (compiled with -mamx-tile -mamx-bf16 and
// AVX-512 BF16 for the packing; called only when cpu_features reports the amx bf16 path,
// which includes the kernel's permission to use tile data).
//
// Algorithm: a 32 x 32 float32 C block in four accumulator tiles (tmm0-3); per 32-step of k,
// two A tiles (16 rows x 32 bfloat16, tmm4-5) and two B tiles (16 pairs x 16 columns,
// tmm6-7) feed four TDPBF16PS, 4 x 16 x 16 x 32 multiply-adds (65,536 FLOPs) for 4 KiB of
// tile loads. The accumulators start from C (accumulate) or zero and are stored once, so an
// edge block computed in a scratch copy of C gives the same bits (matmul.cpp).
//
// Measured 2026-12-05, Intel Xeon (Sapphire Rapids class, AMX-BF16), 1 core, packed operands
// hot in L1, kc 256: 2.05 TFLOP/s. Whole-matmul figures: matmul.cpp's header and
// benchmarks/RESULTS.md.
#include <immintrin.h>

#include "kernels/matmul_bf16_pack.h"
#include "kernels/matmul_ukernel.h"

namespace pyzen::matmul_detail {
namespace {

constexpr int kMR = 32, kNR = 32;

// The LDTILECFG operand: palette 1, eight tiles of 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// Tile configuration is per thread and other libraries in the process (oneDNN) may change
// it, so every call configures its threads on entry and releases the tiles on exit.
void amx_enter() {
  static const TileConfig config;
  _tile_loadconfig(&config);
}

void amx_leave() { _tile_release(); }

void amx_ukernel(int64_t kpad, const uint16_t* a, int64_t, const uint16_t* b, int64_t, float* c,
                 int64_t ldc, bool accumulate) {
  const int64_t c_stride = ldc * 4, a_stride = 64, b_stride = kNR * 4;
  if (accumulate) {
    _tile_loadd(0, c, c_stride);
    _tile_loadd(1, c + 16, c_stride);
    _tile_loadd(2, c + 16 * ldc, c_stride);
    _tile_loadd(3, c + 16 * ldc + 16, c_stride);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t p = 0; p < kpad; p += 32) {
    const uint16_t* bp = b + p * kNR;  // B sliver row p/2, NR pairs of 2 bfloat16 per row
    const uint16_t* ap = a + p * kMR;  // A chunk p/32: 32 rows of 32 bfloat16
    _tile_loadd(4, ap, a_stride);
    _tile_loadd(6, bp, b_stride);
    _tile_loadd(5, ap + 16 * 32, a_stride);
    _tile_loadd(7, bp + 32, b_stride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, c_stride);
  _tile_stored(1, c + 16, c_stride);
  _tile_stored(2, c + 16 * ldc, c_stride);
  _tile_stored(3, c + 16 * ldc + 16, c_stride);
}

}  // namespace

// K-blocks of up to 1024: each K-block is a pass over C (a load and a store of every C
// tile), and at AMX's speed those passes cost more than the L1 misses of a 64 KiB B sliver:
// 1 thread, 2048^3 879 -> 1112-1145 GFLOP/s against KC 384 (and a 384 KiB A block, matmul.cpp).
Kernels<float, uint16_t> sbgemm_kernels_amx() {
  return {kMR, kNR, 1024, 32, false, amx_ukernel, bf16_pack_a<kMR>, bf16_pack_b<kNR>,
          nullptr, amx_enter, amx_leave};
}

}  // namespace pyzen::matmul_detail
