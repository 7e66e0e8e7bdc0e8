// Launches of argsort; the algorithm is in sort_kernels.cuh.
#include "common.cuh"
#include "kernels.h"
#include "sort_kernels.cuh"

namespace pyzen::cuda {

using namespace sort_kernels;

void argsort(const Array& out, const Array& x) {
  const char* op = "argsort";
  const std::int64_t total = x.numel(), n = x.shape.back();
  if (total == 0) return;
  std::int64_t n_pow2 = 1;
  while (n_pow2 < total) n_pow2 <<= 1;
  static_assert(sizeof(ArgKey) == 24);
  const Array keys = empty({n_pow2, 3}, DType::i64, op);  // the ArgKeys, three words each
  auto* k = static_cast<ArgKey*>(keys.data());
  PYZEN_DISPATCH(x.dtype, op, {
    argsort_keys_kernel<scalar_t><<<grid_for(n_pow2), kThreads>>>(total, n_pow2, n, static_cast<const scalar_t*>(x.data()), k);
  });
  check_launch(op, "argsort_keys_kernel");
  for_each_bitonic_step(n_pow2, [&](std::int64_t j, std::int64_t size) {
    bitonic_step_kernel<<<grid_for(n_pow2), kThreads>>>(n_pow2, k, j, size);
    check_launch(op, "bitonic_step_kernel");
  });
  argsort_out_kernel<ArgKey><<<grid_for(total), kThreads>>>(total, k, static_cast<std::int64_t*>(out.data()));
  check_launch(op, "argsort_out_kernel");
}

}  // namespace pyzen::cuda
