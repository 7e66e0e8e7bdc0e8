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

namespace pyzen::cuda {
namespace {

__device__ __forceinline__ bool wrap(std::int64_t& i, std::int64_t n) {
  if (i < 0) i += n;
  return i >= 0 && i < n;
}

// out (contiguous) viewed as (outer, L, inner): out[o, l, q] = x[o, index[l], q].
template <typename T>
__global__ void take_kernel(std::int64_t total, std::int64_t len, std::int64_t inner_n, T* out, const T* x,
                            const std::int64_t* index, std::int64_t axis_size, std::int64_t axis_stride,
                            Indexer<1> outer, Indexer<1> inner) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t q = i % inner_n;
    const std::int64_t l = (i / inner_n) % len;
    const std::int64_t o = i / inner_n / len;
    std::int64_t k = index[l];
    if (!wrap(k, axis_size)) {
      out[i] = T(0);
      continue;
    }
    std::int64_t a[1], b[1];
    outer.offsets(o, a);
    inner.offsets(q, b);
    out[i] = x[a[0] + k * axis_stride + b[0]];
  }
}

// Over index's shape: offsets {index, x with the axis stride zeroed}.
template <typename T>
__global__ void gather_kernel(std::int64_t n, T* out, const T* x, const std::int64_t* index, std::int64_t axis_size,
                              std::int64_t axis_stride, Indexer<2> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[2];
    ix.offsets(i, off);
    std::int64_t k = index[off[0]];
    out[i] = wrap(k, axis_size) ? x[off[1] + k * axis_stride] : T(0);
  }
}

template <typename T>
__device__ __forceinline__ void add_to(T* p, T v) {
  if constexpr (std::is_same_v<T, std::int64_t>)
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));  // two's complement
  else
    atomicAdd(p, v);
}

// Over index's shape: offsets {index, values, out with the axis stride zeroed}.
template <typename T>
__global__ void scatter_kernel(bool accumulate, std::int64_t n, T* out, const std::int64_t* index, const T* values,
                               std::int64_t axis_size, std::int64_t axis_stride, Indexer<3> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[3];
    ix.offsets(i, off);
    std::int64_t k = index[off[0]];
    if (!wrap(k, axis_size)) continue;
    T* p = out + off[2] + k * axis_stride;
    if constexpr (std::is_same_v<T, bool>) *p = values[off[1]];  // the host allows no bool accumulate
    else if (accumulate) add_to(p, values[off[1]]);
    else *p = values[off[1]];
  }
}

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
