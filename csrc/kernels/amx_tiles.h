// AMX tile configuration and the 32 x 32 block product for the kernels built with -mamx-tile
// (matmul_amx.cpp, attention_amx.cpp): palette 1, eight tiles of 16 rows x 64 bytes. Tile configuration is
// per thread, and other libraries in the process (oneDNN) may change it, so every kernel
// call configures its threads on entry and releases the tiles on exit. Internal linkage,
// as every header compiled with ISA flags (matmul_ukernel.h).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

inline void amx_enter() {
  static const TileConfig config;
  _tile_loadconfig(&config);
}

inline void amx_leave() { _tile_release(); }

// C (32 x 32 float32 at c, row stride ldc floats) = (accumulate ? C : 0) + A B over `chunks`
// steps of 32 k: A chunk ch at a + ch*a_chunk, 32 rows of 32 bfloat16 (64 bytes a row); B
// chunk ch at b + ch*b_chunk, 16 rows of 32 (k, k+1) pairs (128 bytes a row; matmul_bf16_pack.h's
// layouts). Four accumulator tiles (tmm0-3), two A tiles (tmm4-5), two B tiles (tmm6-7): four
// TDPBF16PS, 65,536 FLOPs, per 4 KiB of tile loads.
inline void amx_block_32x32(const uint16_t* a, int64_t a_chunk, const uint16_t* b, int64_t b_chunk,
                            int64_t chunks, float* c, int64_t ldc, bool accumulate) {
  const int64_t cs = ldc * 4;
  if (accumulate) {
    _tile_loadd(0, c, cs);
    _tile_loadd(1, c + 16, cs);
    _tile_loadd(2, c + 16 * ldc, cs);
    _tile_loadd(3, c + 16 * ldc + 16, cs);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const uint16_t* ap = a + ch * a_chunk;
    const uint16_t* bp = b + ch * b_chunk;
    _tile_loadd(4, ap, 64);
    _tile_loadd(6, bp, 128);
    _tile_loadd(5, ap + 16 * 32, 64);
    _tile_loadd(7, bp + 32, 128);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, cs);
  _tile_stored(1, c + 16, cs);
  _tile_stored(2, c + 16 * ldc, cs);
  _tile_stored(3, c + 16 * ldc + 16, cs);
}

}  // namespace
