// matmul: out (B..., M, N), contiguous, = a (B..., M, K) @ b (B..., K, N), with any strides
// on a and b (transposed operands and broadcast batch dims cost no copy).
//
// float32: SGEMM with a 128x128 block tile, K-steps of 8 and an 8x8 register tile per
// thread (256 threads). Each K-step the block stages a 128x8 slice of a and an 8x128
// slice of b in shared memory (a stored k-major so both are read as float4 rows); each
// thread then does 8 x 64 FMAs from 16 shared-memory float4 loads. The next K-step's
// slices are loaded into registers while the current one is computed (two shared
// buffers, one barrier per K-step). A thread's 8x8 outputs are two 4-row by two
// 4-column quadrants 64 apart, so the 16 threads of a half-warp read 256 contiguous bytes
// of b (no bank conflicts) and broadcast-read a. Global loads are float4 when the
// operand's contiguous dim allows it (unit stride, other stride and base 16-byte aligned,
// contiguous size a multiple of 4), otherwise scalar; every load and store is bounds-
// checked, so any M, N, K (1, non-multiples of the tile) is right.
// Cost: 2*M*N*K FLOPs. Speed: not yet measured (target on H100 at 4096^3: >= 0.85x
// cuBLAS float32 with TF32 off).
//
// float64 and int64: a plain 16x16 shared-memory tiled kernel, one output per thread.
// Speed: not yet measured.
//
// bf16 (float32 operands, autocast): both rounded to bfloat16 into dense K-contiguous
// copies, then tensor cores (matmul_bf16_kernels.cuh). Speed: not yet measured.
#include <type_traits>

#include "common.cuh"
#include "kernels.h"
#include "matmul_bf16_kernels.cuh"
#include "matmul_kernels.cuh"

namespace pyzen::cuda {

using namespace matmul_kernels;

namespace {

// out = a @ b through bfloat16 copies of a and of b transposed (the caller has handled the
// empty cases; batch dims in bshape with per-operand strides sa, sb).
void matmul_bf16(const Array& out, const Array& a, const Array& b, const std::vector<std::int64_t>& bshape,
                 const std::vector<std::int64_t>& sa, const std::vector<std::int64_t>& sb, std::int64_t batches) {
  namespace bk = matmul_bf16_kernels;
  const int nd = a.ndim();
  const std::int64_t M = a.shape[nd - 2], K = a.shape[nd - 1], N = b.shape[nd - 1];
  const std::int64_t kp = (K + bk::kStep - 1) / bk::kStep * bk::kStep;
  const Array ap = empty({batches, M, kp}, DType::bf16, "matmul"), bp = empty({batches, N, kp}, DType::bf16, "matmul");
  auto* apd = static_cast<std::uint16_t*>(ap.data());
  auto* bpd = static_cast<std::uint16_t*>(bp.data());
  const std::vector<std::int64_t>* s_a[1] = {&sa};
  const std::vector<std::int64_t>* s_b[1] = {&sb};
  bk::pack_bf16_kernel<<<grid_for(ap.numel()), kThreads>>>(ap.numel(), M, K, kp, static_cast<const float*>(a.data()),
                                                           a.strides[nd - 2], a.strides[nd - 1], make_indexer<1>(bshape, s_a), apd);
  check_launch("matmul", "pack_bf16_kernel");
  bk::pack_bf16_kernel<<<grid_for(bp.numel()), kThreads>>>(bp.numel(), N, K, kp, static_cast<const float*>(b.data()),
                                                           b.strides[nd - 1], b.strides[nd - 2], make_indexer<1>(bshape, s_b), bpd);
  check_launch("matmul", "pack_bf16_kernel");
  const dim3 grid(static_cast<unsigned>((M + bk::kTile - 1) / bk::kTile), static_cast<unsigned>((N + bk::kTile - 1) / bk::kTile),
                  static_cast<unsigned>(batches < 65535 ? batches : 65535));
  bk::matmul_bf16_kernel<<<grid, bk::kBlock>>>(static_cast<int>(M), static_cast<int>(N), static_cast<int>(kp), apd, bpd,
                                               static_cast<float*>(out.data()), batches);
  check_launch("matmul", "matmul_bf16_kernel");
}

}  // namespace

void matmul(const Array& out, const Array& a, const Array& b, bool bf16) {
  const int nd = a.ndim();
  const int M = static_cast<int>(a.shape[nd - 2]), K = static_cast<int>(a.shape[nd - 1]);
  const int N = static_cast<int>(b.shape[nd - 1]);
  if (out.numel() == 0) return;
  if (K == 0) {  // empty sum: zeros
    fill(out, 0.0, 0);
    return;
  }
  const std::vector<std::int64_t> bshape(a.shape.begin(), a.shape.end() - 2);
  const std::vector<std::int64_t> sa(a.strides.begin(), a.strides.end() - 2);
  const std::vector<std::int64_t> sb(b.strides.begin(), b.strides.end() - 2);
  const std::vector<std::int64_t>* s[2] = {&sa, &sb};
  const auto bix = make_indexer<2>(bshape, s);
  std::int64_t batches = 1;
  for (std::int64_t d : bshape) batches *= d;
  const unsigned gz = static_cast<unsigned>(batches < 65535 ? batches : 65535);
  if (bf16) return matmul_bf16(out, a, b, bshape, sa, sb, batches);
  const std::int64_t sam = a.strides[nd - 2], sak = a.strides[nd - 1];
  const std::int64_t sbk = b.strides[nd - 2], sbn = b.strides[nd - 1];

  if (a.dtype == DType::f32) {
    const Operand oa = make_operand(static_cast<const float*>(a.data()), sam, sak, sa);
    const Operand ob = make_operand(static_cast<const float*>(b.data()), sbk, sbn, sb);
    const dim3 grid = sgemm_grid(M, N, gz);
    sgemm_kernel<<<grid, 256>>>(M, N, K, oa, ob, static_cast<float*>(out.data()), sgemm_vec_out(N, out.data()), batches, bix);
    check_launch("matmul", "sgemm_kernel");
    return;
  }
  const std::int64_t mtiles = (M + TS - 1) / TS, ntiles = (N + TS - 1) / TS;
  const dim3 grid(static_cast<unsigned>(ntiles), static_cast<unsigned>(mtiles < 65535 ? mtiles : 65535), gz);
  const dim3 block(TS, TS);
  switch (a.dtype) {
    case DType::f64:
      gemm_tiled_kernel<double><<<grid, block>>>(M, N, K, static_cast<const double*>(a.data()), sam, sak,
                                                 static_cast<const double*>(b.data()), sbk, sbn,
                                                 static_cast<double*>(out.data()), batches, bix);
      break;
    case DType::i64:
      gemm_tiled_kernel<std::int64_t><<<grid, block>>>(M, N, K, static_cast<const std::int64_t*>(a.data()), sam, sak,
                                                       static_cast<const std::int64_t*>(b.data()), sbk, sbn,
                                                       static_cast<std::int64_t*>(out.data()), batches, bix);
      break;
    default: throw std::invalid_argument(std::string("matmul: unsupported dtype ") + dtype_name(a.dtype));
  }
  check_launch("matmul", "gemm_tiled_kernel");
}

}  // namespace pyzen::cuda
