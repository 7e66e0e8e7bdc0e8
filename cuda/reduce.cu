// Reductions along the last dims (sum, prod, max, min, argmax, argmin), cumulative sum
// and product along the last dim, and softmax / log_softmax (forward and backward) over
// the last dim.
//
// Deterministic: one block per output row; thread t folds elements t, t + 256, ... in
// order, then a fixed shared-memory tree combines the 256 partials. The same input
// always gives the same bits, whatever the launch history. One block per row is simple
// and right for the many-rows case (softmax, per-row sums); a full reduction of a large
// tensor runs on one block. Speed: not yet measured.
#include <cmath>
#include <type_traits>

#include "common.cuh"
#include "kernels.h"
#include "reduce_kernels.cuh"

namespace pyzen::cuda {
namespace {

using namespace reduce_kernels;

unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>(rows < 65536 * 16 ? rows : 65536 * 16); }

Indexer<1> sub_indexer(const Array& x, int begin, int end) {
  const std::vector<std::int64_t> shape(x.shape.begin() + begin, x.shape.begin() + end);
  const std::vector<std::int64_t> strides(x.strides.begin() + begin, x.strides.begin() + end);
  const std::vector<std::int64_t>* s[1] = {&strides};
  return make_indexer<1>(shape, s);
}

}  // namespace

void reduce(Reduce op, const Array& out, const Array& x, int nreduce) {
  const std::int64_t m = out.numel();
  if (m == 0) return;
  const int kept = x.ndim() - nreduce;
  std::int64_t r = 1;
  for (int d = kept; d < x.ndim(); ++d) r *= x.shape[d];
  const auto outer = sub_indexer(x, 0, kept);
  const auto inner = sub_indexer(x, kept, x.ndim());
  const unsigned blocks = row_blocks(m);
  PYZEN_DISPATCH(x.dtype, "reduce", {
    const auto* px = static_cast<const scalar_t*>(x.data());
    auto* po = static_cast<scalar_t*>(out.data());
    switch (op) {
      case Reduce::sum: reduce_kernel<scalar_t, SumOp<scalar_t>><<<blocks, kThreads>>>(m, r, po, px, outer, inner); break;
      case Reduce::prod: reduce_kernel<scalar_t, ProdOp<scalar_t>><<<blocks, kThreads>>>(m, r, po, px, outer, inner); break;
      case Reduce::max: reduce_kernel<scalar_t, MaxOp<scalar_t>><<<blocks, kThreads>>>(m, r, po, px, outer, inner); break;
      case Reduce::min: reduce_kernel<scalar_t, MinOp<scalar_t>><<<blocks, kThreads>>>(m, r, po, px, outer, inner); break;
      case Reduce::argmax:
      case Reduce::argmin:
        arg_kernel<scalar_t><<<blocks, kThreads>>>(op == Reduce::argmax, m, r, static_cast<std::int64_t*>(out.data()),
                                                   px, outer, inner);
        break;
    }
  });
  check_launch("reduce", "reduce_kernel");
}

void cumulative(bool product, const Array& out, const Array& x) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const std::int64_t len = x.shape.back();
  const std::int64_t rows = n / len;
  const auto outer = sub_indexer(x, 0, x.ndim() - 1);
  PYZEN_DISPATCH(x.dtype, "cumulative", {
    cumulative_kernel<scalar_t><<<grid_for(rows), kThreads>>>(product, rows, len, static_cast<scalar_t*>(out.data()),
                                                             static_cast<const scalar_t*>(x.data()), outer,
                                                             x.strides.back());
  });
  check_launch("cumulative", "cumulative_kernel");
}

void softmax(const Array& out, const Array& x, bool log) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const std::int64_t c = x.shape.back();
  const std::int64_t rows = n / c;
  PYZEN_DISPATCH_FLOAT(x.dtype, "softmax", {
    softmax_kernel<scalar_t><<<row_blocks(rows), kThreads>>>(log, rows, c, static_cast<scalar_t*>(out.data()),
                                                             static_cast<const scalar_t*>(x.data()));
  });
  check_launch("softmax", "softmax_kernel");
}

void softmax_backward(const Array& dx, const Array& g, const Array& y, bool log) {
  const std::int64_t n = dx.numel();
  if (n == 0) return;
  const std::int64_t c = y.shape.back();
  const std::int64_t rows = n / c;
  PYZEN_DISPATCH_FLOAT(y.dtype, "softmax_backward", {
    softmax_backward_kernel<scalar_t><<<row_blocks(rows), kThreads>>>(
        log, rows, c, static_cast<scalar_t*>(dx.data()), static_cast<const scalar_t*>(g.data()),
        static_cast<const scalar_t*>(y.data()));
  });
  check_launch("softmax_backward", "softmax_backward_kernel");
}

}  // namespace pyzen::cuda
