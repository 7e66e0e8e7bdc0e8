// Indexing kernels: take (index_select / embedding rows), gather (take_along_axis) and
// scatter (index_add / scatter-add backward, and index_put). Indices are int64 and may be
// negative (counted from the end, as in NumPy); an index still out of range after that is
// skipped (take writes 0), so a bad index can never read or write outside an array. The
// Python layer checks bounds first and raises IndexError.
//
// scatter with accumulate uses atomicAdd: with repeated indices the order of the
// additions, and so the float rounding, can change from run to run (non-deterministic
// in the last bits; integer sums are exact). Speed: not yet measured.
#include <type_traits>

#include "common.cuh"
#include "kernels.h"
#include "index_kernels.cuh"

namespace pyzen::cuda {
namespace {

using namespace index_kernels;

Indexer<1> dims_indexer(const Array& x, int begin, int end) {
  const std::vector<std::int64_t> shape(x.shape.begin() + begin, x.shape.begin() + end);
  const std::vector<std::int64_t> strides(x.strides.begin() + begin, x.strides.begin() + end);
  const std::vector<std::int64_t>* s[1] = {&strides};
  return make_indexer<1>(shape, s);
}

}  // namespace

void take(const Array& out, const Array& x, const Array& index, int axis) {
  const std::int64_t total = out.numel();
  if (total == 0) return;
  const std::int64_t len = index.numel();
  const std::int64_t inner_n = total / len / [&] {
    std::int64_t o = 1;
    for (int d = 0; d < axis; ++d) o *= x.shape[d];
    return o;
  }();
  const auto outer = dims_indexer(x, 0, axis);
  const auto inner = dims_indexer(x, axis + 1, x.ndim());
  PYZEN_DISPATCH(x.dtype, "take", {
    take_kernel<scalar_t><<<grid_for(total), kThreads>>>(
        total, len, inner_n, static_cast<scalar_t*>(out.data()), static_cast<const scalar_t*>(x.data()),
        static_cast<const std::int64_t*>(index.data()), x.shape[axis], x.strides[axis], outer, inner);
  });
  check_launch("take", "take_kernel");
}

void gather(const Array& out, const Array& x, const Array& index, int axis) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  std::vector<std::int64_t> xs = x.strides;
  xs[axis] = 0;
  const std::vector<std::int64_t>* s[2] = {&index.strides, &xs};
  const auto ix = make_indexer<2>(index.shape, s);
  PYZEN_DISPATCH(x.dtype, "gather", {
    gather_kernel<scalar_t><<<grid_for(n), kThreads>>>(n, static_cast<scalar_t*>(out.data()),
                                                       static_cast<const scalar_t*>(x.data()),
                                                       static_cast<const std::int64_t*>(index.data()), x.shape[axis],
                                                       x.strides[axis], ix);
  });
  check_launch("gather", "gather_kernel");
}

void scatter(const Array& out, const Array& index, const Array& values, int axis, bool accumulate) {
  const std::int64_t n = index.numel();
  if (n == 0) return;
  std::vector<std::int64_t> os = out.strides;
  os[axis] = 0;
  const std::vector<std::int64_t>* s[3] = {&index.strides, &values.strides, &os};
  const auto ix = make_indexer<3>(index.shape, s);
  PYZEN_DISPATCH(out.dtype, "scatter", {
    scatter_kernel<scalar_t><<<grid_for(n), kThreads>>>(
        accumulate, n, static_cast<scalar_t*>(out.data()), static_cast<const std::int64_t*>(index.data()),
        static_cast<const scalar_t*>(values.data()), out.shape[axis], out.strides[axis], ix);
  });
  check_launch("scatter", "scatter_kernel");
}

}  // namespace pyzen::cuda
