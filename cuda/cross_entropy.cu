// Launches of the cross-entropy kernels; the algorithm is in cross_entropy_kernels.cuh.
#include "common.cuh"
#include "cross_entropy_kernels.cuh"
#include "training.h"

namespace pyzen::cuda {

using namespace cross_entropy_kernels;

namespace {

unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>(rows < 65536 * 16 ? rows : 65536 * 16); }

}  // namespace

void cross_entropy_forward(const Array& losses, const Array& lse, const Array& logits, const Array& target,
                           std::int64_t ignore_index, double label_smoothing) {
  const std::int64_t rows = logits.shape[0], c = logits.shape[1];
  if (rows == 0) return;
  PYZEN_DISPATCH_FLOAT(logits.dtype, "cross_entropy", {
    cross_entropy_forward_kernel<scalar_t><<<row_blocks(rows), kThreads>>>(
        rows, c, static_cast<const scalar_t*>(logits.data()), static_cast<const std::int64_t*>(target.data()),
        ignore_index, label_smoothing, static_cast<scalar_t*>(losses.data()), static_cast<scalar_t*>(lse.data()));
  });
  check_launch("cross_entropy", "cross_entropy_forward_kernel");
}

void cross_entropy_backward(const Array& dlogits, const Array& g, const Array& logits, const Array& target,
                            const Array& lse, std::int64_t ignore_index, double label_smoothing) {
  const std::int64_t rows = logits.shape[0], c = logits.shape[1];
  if (rows == 0 || c == 0) return;
  PYZEN_DISPATCH_FLOAT(logits.dtype, "cross_entropy_backward", {
    cross_entropy_backward_kernel<scalar_t><<<row_blocks(rows), kThreads>>>(
        rows, c, static_cast<const scalar_t*>(g.data()), static_cast<const scalar_t*>(logits.data()),
        static_cast<const std::int64_t*>(target.data()), static_cast<const scalar_t*>(lse.data()), ignore_index,
        label_smoothing, static_cast<scalar_t*>(dlogits.data()));
  });
  check_launch("cross_entropy_backward", "cross_entropy_backward_kernel");
}

}  // namespace pyzen::cuda
