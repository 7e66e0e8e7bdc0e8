// Elementwise kernels: fill, iota, copy/cast, unary and binary ops, where. One generic
// strided kernel per (input dtype, output dtype), with the op chosen by a warp-uniform
// switch, instead of one kernel per op per layout: compile time stays small, and the
// switch costs little next to the memory traffic. Operands of any strides (broadcast dims
// have stride 0) index through Indexer, whose dims are coalesced on the host, so
// contiguous operands index as one flat dim.
// Speed: not yet measured (expected: bound by memory bandwidth for contiguous operands).
#include <type_traits>

#include "common.cuh"
#include "kernels.h"
#include "elementwise_kernels.cuh"

namespace pyzen::cuda {

using namespace elementwise_kernels;

void fill(const Array& out, double value, std::int64_t int_value) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const std::vector<std::int64_t>* s[1] = {&out.strides};
  const auto ix = make_indexer<1>(out.shape, s);
  PYZEN_DISPATCH(out.dtype, "fill", {
    const scalar_t v = std::is_floating_point_v<scalar_t> ? static_cast<scalar_t>(value)
                                                          : static_cast<scalar_t>(int_value);
    fill_kernel<scalar_t><<<grid_for(n), kThreads>>>(n, static_cast<scalar_t*>(out.data()), v, ix);
  });
  check_launch("fill", "fill_kernel");
}

void iota(const Array& out, double start, double step) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  PYZEN_DISPATCH(out.dtype, "iota", {
    iota_kernel<scalar_t><<<grid_for(n), kThreads>>>(n, static_cast<scalar_t*>(out.data()), start, step);
  });
  check_launch("iota", "iota_kernel");
}

void copy(const Array& out, const Array& src) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const std::vector<std::int64_t>* s[2] = {&out.strides, &src.strides};
  const auto ix = make_indexer<2>(out.shape, s);
  PYZEN_DISPATCH(out.dtype, "copy", {
    using out_t = scalar_t;
    PYZEN_DISPATCH(src.dtype, "copy", {
      copy_kernel<out_t, scalar_t><<<grid_for(n), kThreads>>>(
          n, static_cast<out_t*>(out.data()), static_cast<const scalar_t*>(src.data()), ix);
    });
  });
  check_launch("copy", "copy_kernel");
}

void unary(Unary op, const Array& out, const Array& x) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const std::vector<std::int64_t>* s[2] = {&out.strides, &x.strides};
  const auto ix = make_indexer<2>(out.shape, s);
  const bool to_bool = op == Unary::logical_not || op == Unary::isfinite;
  PYZEN_DISPATCH(x.dtype, "unary", {
    const auto* in = static_cast<const scalar_t*>(x.data());
    if (to_bool)
      unary_kernel<scalar_t, bool><<<grid_for(n), kThreads>>>(op, n, static_cast<bool*>(out.data()), in, ix);
    else
      unary_kernel<scalar_t, scalar_t><<<grid_for(n), kThreads>>>(op, n, static_cast<scalar_t*>(out.data()), in, ix);
  });
  check_launch("unary", "unary_kernel");
}

void binary(Binary op, const Array& out, const Array& a, const Array& b) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const std::vector<std::int64_t>* s[3] = {&out.strides, &a.strides, &b.strides};
  const auto ix = make_indexer<3>(out.shape, s);
  PYZEN_DISPATCH(a.dtype, "binary", {
    const auto* pa = static_cast<const scalar_t*>(a.data());
    const auto* pb = static_cast<const scalar_t*>(b.data());
    if (is_comparison(op))
      binary_kernel<scalar_t, bool><<<grid_for(n), kThreads>>>(op, n, static_cast<bool*>(out.data()), pa, pb, ix);
    else
      binary_kernel<scalar_t, scalar_t><<<grid_for(n), kThreads>>>(op, n, static_cast<scalar_t*>(out.data()), pa, pb, ix);
  });
  check_launch("binary", "binary_kernel");
}

void where(const Array& out, const Array& cond, const Array& a, const Array& b) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  const std::vector<std::int64_t>* s[4] = {&out.strides, &cond.strides, &a.strides, &b.strides};
  const auto ix = make_indexer<4>(out.shape, s);
  PYZEN_DISPATCH(out.dtype, "where", {
    where_kernel<scalar_t><<<grid_for(n), kThreads>>>(
        n, static_cast<scalar_t*>(out.data()), static_cast<const bool*>(cond.data()),
        static_cast<const scalar_t*>(a.data()), static_cast<const scalar_t*>(b.data()), ix);
  });
  check_launch("where", "where_kernel");
}

}  // namespace pyzen::cuda
