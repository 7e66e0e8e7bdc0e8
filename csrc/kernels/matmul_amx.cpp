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
// Measured 2026-12-05, Intel Xeon (family 6 model 207, Emerald Rapids, AMX-BF16): 1 core,
// packed operands hot in L1, kc 256: 2.05 TFLOP/s. 2 threads, float32 tensors under
// autocast through the Tensor API against torch 2.13's CPU autocast (oneDNN, AMX) in the
// same process: 1024^3 forward 1.53x, forward + backward 1.38x; 2048^3 1.03x and 0.95x.
// Driver history: matmul.cpp's header; figures: benchmarks/RESULTS.md.
#include <immintrin.h>

#include "kernels/amx_tiles.h"
#include "kernels/matmul_bf16_pack.h"
#include "kernels/matmul_ukernel.h"

namespace pyzen::matmul_detail {
namespace {

constexpr int kMR = 32, kNR = 32;

// A 32 x kpad A sliver times a kpad x 32 B sliver (matmul_bf16_pack.h's layouts: chunks of
// 32 k, 1 KiB each in both) into the 32 x 32 block of C.
void amx_ukernel(int64_t kpad, const uint16_t* a, int64_t, const uint16_t* b, int64_t, float* c,
                 int64_t ldc, bool accumulate) {
  amx_block_32x32(a, kMR * 32, b, kNR * 32, kpad / 32, c, ldc, accumulate);
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
