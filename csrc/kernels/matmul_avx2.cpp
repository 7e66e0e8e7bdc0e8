// AVX2+FMA micro-kernels for matmul (compiled with -mavx2 -mfma; called only when
// cpu_features reports avx2). Algorithm: outer-product register blocking, see
// matmul_ukernel.h. float32: 6x16 tile = 12 ymm accumulators + 2 B vectors + 1 broadcast
// (15 of 16 registers); per k step 2 loads + 6 broadcasts feed 12 FMAs (192 FLOPs).
// float64: 6x8 tile, same register plan (96 FLOPs per k step).
// Measured 2026-11-22, AMD EPYC (Zen 3) 2 vCPUs, float32 1 thread: the micro-kernel alone
// (hot caches, kc 64..384) 96-101 GFLOP/s of a 103 GFLOP/s FMA peak; whole matmul 82-92
// GFLOP/s (matmul.cpp). Inner loop: 2 loads + 6 broadcasts + 12 FMAs, no spills (asm).
#include "kernels/matmul_ukernel.h"
#include "kernels/vec_avx2.h"

namespace pyzen::matmul_detail {

// K-blocks of 384: a 24 KiB B sliver in Zen 3's 32 KiB L1 (matmul.cpp's history).
Kernels<float> sgemm_kernels_avx2() { return make_gemm_kernels<Avx2F32, 6, 2, 384>(); }
Kernels<double> dgemm_kernels_avx2() { return make_gemm_kernels<Avx2F64, 6, 2, 384>(); }

}  // namespace pyzen::matmul_detail
