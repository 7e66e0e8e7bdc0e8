// Launches of the embedding backward kernels; the algorithm is in embedding_kernels.cuh.
#include "common.cuh"
#include "embedding_kernels.cuh"
#include "kernels.h"
#include "training.h"

namespace pyzen::cuda {

using namespace embedding_kernels;

void embedding_backward(const Array& out, const Array& g, const Array& index) {
  const char* op = "embedding_backward";
  const std::int64_t rows = out.shape[0], cols = out.shape[1], n = index.numel();
  if (rows == 0 || cols == 0) return;
  if (n == 0) {
    fill(out, 0.0, 0);
    return;
  }
  std::int64_t n_pow2 = 1;
  while (n_pow2 < n) n_pow2 <<= 1;
  const Array keys = empty({n_pow2}, DType::i64, op);  // the uint64 keys
  auto* k = static_cast<std::uint64_t*>(keys.data());
  embedding_keys_kernel<<<grid_for(n_pow2), kThreads>>>(n, n_pow2, static_cast<const std::int64_t*>(index.data()), rows, k);
  check_launch(op, "embedding_keys_kernel");
  sort_kernels::for_each_bitonic_step(n_pow2, [&](std::int64_t j, std::int64_t size) {
    sort_kernels::bitonic_step_kernel<<<grid_for(n_pow2), kThreads>>>(n_pow2, k, j, size);
    check_launch(op, "bitonic_step_kernel");
  });
  const dim3 grid(static_cast<unsigned>(rows < (1 << 20) ? rows : (1 << 20)), static_cast<unsigned>((cols + kThreads - 1) / kThreads));
  PYZEN_DISPATCH_FLOAT(out.dtype, op, {
    embedding_sum_kernel<scalar_t><<<grid, kThreads>>>(rows, cols, n, k, static_cast<const scalar_t*>(g.data()),
                                                       static_cast<scalar_t*>(out.data()));
  });
  check_launch(op, "embedding_sum_kernel");
}

}  // namespace pyzen::cuda
