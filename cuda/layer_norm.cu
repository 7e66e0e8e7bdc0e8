// Launches of the layer norm kernels; the algorithm is in layer_norm_kernels.cuh.
#include "common.cuh"
#include "kernels.h"
#include "layer_norm_kernels.cuh"
#include "training.h"

namespace pyzen::cuda {

using namespace layer_norm_kernels;

namespace {

unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>(rows < 65536 * 16 ? rows : 65536 * 16); }

template <typename T>
const T* ptr(const Array* a) {
  return a ? static_cast<const T*>(a->data()) : nullptr;
}

}  // namespace

void layer_norm_forward(const Array& out, const Array& mean, const Array& rstd, const Array& x, const Array* weight,
                        const Array* bias, double eps) {
  const std::int64_t rows = mean.numel();
  if (rows == 0) return;
  const std::int64_t c = x.shape.back();
  PYZEN_DISPATCH_FLOAT(x.dtype, "layer_norm", {
    layer_norm_forward_kernel<scalar_t><<<row_blocks(rows), kThreads>>>(
        rows, c, eps, static_cast<const scalar_t*>(x.data()), ptr<scalar_t>(weight), ptr<scalar_t>(bias),
        static_cast<scalar_t*>(out.data()), static_cast<scalar_t*>(mean.data()), static_cast<scalar_t*>(rstd.data()));
  });
  check_launch("layer_norm", "layer_norm_forward_kernel");
}

void layer_norm_backward(const Array& dx, const Array* dweight, const Array* dbias, const Array& g, const Array& x,
                         const Array* weight, const Array& mean, const Array& rstd) {
  const std::int64_t rows = mean.numel(), c = x.shape.back();
  const std::int64_t parts = backward_parts(rows);
  // Partial sums: (2, parts, C), zeroed; with no rows the column sums give zeros.
  const bool partials = dweight || dbias;
  Array work;
  if (partials && parts > 0) {
    work = empty({2, parts, c}, x.dtype, "layer_norm_backward");
    fill(work, 0.0, 0);
  }
  PYZEN_DISPATCH_FLOAT(x.dtype, "layer_norm_backward", {
    auto* pw = partials && parts > 0 ? static_cast<scalar_t*>(work.data()) : nullptr;
    if (rows > 0) {
      layer_norm_backward_kernel<scalar_t><<<static_cast<unsigned>(parts), kThreads>>>(
          rows, c, static_cast<const scalar_t*>(g.data()), static_cast<const scalar_t*>(x.data()),
          ptr<scalar_t>(weight), static_cast<const scalar_t*>(mean.data()), static_cast<const scalar_t*>(rstd.data()),
          static_cast<scalar_t*>(dx.data()), dweight ? pw : nullptr, dbias && pw ? pw + parts * c : nullptr);
      check_launch("layer_norm_backward", "layer_norm_backward_kernel");
    }
    for (int k = 0; k < 2 && c > 0; ++k) {
      const Array* dst = k == 0 ? dweight : dbias;
      if (!dst) continue;
      column_sum_kernel<scalar_t><<<grid_for(c), kThreads>>>(parts, c, pw ? pw + k * parts * c : nullptr,
                                                              static_cast<scalar_t*>(dst->data()));
      check_launch("layer_norm_backward", "column_sum_kernel");
    }
  });
}

}  // namespace pyzen::cuda
