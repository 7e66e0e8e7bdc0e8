// AVX-512 micro-kernels for matmul (compiled with -mavx512f/dq/vl/bw -mfma; called only
// when cpu_features reports avx512). The same kernel as matmul_avx2.cpp with 512-bit
// registers and twice the rows: float32 12x32 tile = 24 zmm accumulators + 2 B vectors +
// 1 broadcast (27 of 32 registers), 768 FLOPs per k step; float64 12x16 tile.
// Measured 2026-12-05, Intel Xeon (family 6 model 207, Emerald Rapids, AVX-512), 1 core: the micro-kernel alone
// (hot caches, kc 192-384) 243-245 GFLOP/s, 98% of the 248 GFLOP/s FMA peak; 14x32, 8x48
// and 6x64 tiles ran the same, so the tile stays the AVX2 kernel's shape doubled. Whole
// matmul: matmul.cpp's header.
#include "kernels/matmul_ukernel.h"
#include "kernels/vec_avx512.h"

namespace pyzen::matmul_detail {

// float32 K-blocks of 512 (a 64 KiB B sliver, read from L2 past the 48 KiB L1): half the
// passes over C of the 24 KiB sliver rule (KC 192), 2026-12-05 Xeon, 1 thread: geometric
// mean of 8 shapes 196 -> 207 GFLOP/s; 2 threads 376 -> 392. float64 keeps KC 192.
Kernels<float> sgemm_kernels_avx512() { return make_gemm_kernels<Avx512F32, 12, 2, 512>(); }
Kernels<double> dgemm_kernels_avx512() { return make_gemm_kernels<Avx512F64, 12, 2, 192>(); }

}  // namespace pyzen::matmul_detail
