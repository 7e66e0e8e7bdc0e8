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

namespace pyzen::cuda {
namespace {

template <typename T>
__device__ __forceinline__ T lowest() {
  if constexpr (std::is_floating_point_v<T>) return -INFINITY;
  else if constexpr (std::is_same_v<T, bool>) return false;
  else return INT64_MIN;
}

template <typename T>
__device__ __forceinline__ T highest() {
  if constexpr (std::is_floating_point_v<T>) return INFINITY;
  else if constexpr (std::is_same_v<T, bool>) return true;
  else return INT64_MAX;
}

template <typename T>
struct SumOp {
  __device__ static T identity() { return T(0); }
  __device__ static T combine(T a, T b) { return a + b; }
};
template <typename T>
struct ProdOp {
  __device__ static T identity() { return T(1); }
  __device__ static T combine(T a, T b) { return a * b; }
};
template <typename T>
struct MaxOp {  // nan wins, as in NumPy
  __device__ static T identity() { return lowest<T>(); }
  __device__ static T combine(T a, T b) { return is_nan(a) ? a : (is_nan(b) ? b : (a > b ? a : b)); }
};
template <typename T>
struct MinOp {
  __device__ static T identity() { return highest<T>(); }
  __device__ static T combine(T a, T b) { return is_nan(a) ? a : (is_nan(b) ? b : (a < b ? a : b)); }
};

// Fixed-order tree over the block's kThreads partials; every thread returns the result.
template <typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, T* smem) {
  smem[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) smem[threadIdx.x] = Op::combine(smem[threadIdx.x], smem[threadIdx.x + stride]);
    __syncthreads();
  }
  const T out = smem[0];
  __syncthreads();  // smem may be reused right after
  return out;
}

template <typename T, typename Op>
__global__ void reduce_kernel(std::int64_t m, std::int64_t r, T* out, const T* x, Indexer<1> outer, Indexer<1> inner) {
  __shared__ T smem[kThreads];
  for (std::int64_t row = blockIdx.x; row < m; row += gridDim.x) {
    std::int64_t base[1];
    outer.offsets(row, base);
    T acc = Op::identity();
    for (std::int64_t j = threadIdx.x; j < r; j += kThreads) {
      std::int64_t off[1];
      inner.offsets(j, off);
      acc = Op::combine(acc, x[base[0] + off[0]]);
    }
    acc = block_reduce<T, Op>(acc, smem);
    if (threadIdx.x == 0) out[row] = acc;
  }
}

// Whether (a, ia) beats (b, ib) for argmax (largest) or argmin: nan beats numbers (NumPy
// returns the first nan), ties go to the smaller index, index -1 means "nothing yet".
template <typename T>
__device__ __forceinline__ bool beats(bool largest, T a, std::int64_t ia, T b, std::int64_t ib) {
  if (ib < 0) return true;
  if (ia < 0) return false;
  const bool an = is_nan(a), bn = is_nan(b);
  if (an || bn) return an && bn ? ia < ib : an;
  if (a == b) return ia < ib;
  return largest ? a > b : a < b;
}

template <typename T>
__global__ void arg_kernel(bool largest, std::int64_t m, std::int64_t r, std::int64_t* out, const T* x,
                           Indexer<1> outer, Indexer<1> inner) {
  __shared__ T sv[kThreads];
  __shared__ std::int64_t si[kThreads];
  for (std::int64_t row = blockIdx.x; row < m; row += gridDim.x) {
    std::int64_t base[1];
    outer.offsets(row, base);
    T best = T(0);
    std::int64_t best_i = -1;
    for (std::int64_t j = threadIdx.x; j < r; j += kThreads) {
      std::int64_t off[1];
      inner.offsets(j, off);
      const T v = x[base[0] + off[0]];
      if (beats(largest, v, j, best, best_i)) best = v, best_i = j;
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = best_i;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
      if (threadIdx.x < stride && beats(largest, sv[threadIdx.x + stride], si[threadIdx.x + stride],
                                        sv[threadIdx.x], si[threadIdx.x])) {
        sv[threadIdx.x] = sv[threadIdx.x + stride];
        si[threadIdx.x] = si[threadIdx.x + stride];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) out[row] = si[0];
    __syncthreads();
  }
}

template <typename T>
__global__ void cumulative_kernel(bool product, std::int64_t rows, std::int64_t len, T* out, const T* x,
                                  Indexer<1> outer, std::int64_t stride) {
  for (std::int64_t row = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; row < rows;
       row += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t base[1];
    outer.offsets(row, base);
    T acc = product ? T(1) : T(0);
    for (std::int64_t j = 0; j < len; ++j) {
      const T v = x[base[0] + j * stride];
      acc = product ? acc * v : acc + v;
      out[row * len + j] = acc;
    }
  }
}

// One block per row of C contiguous elements. The max is replaced by 0 when it is not
// finite (all -inf, or inf or nan present), as the CPU backend does: a row of -inf gives
// nan (0/0), a row holding nan gives nan.
template <typename T>
__global__ void softmax_kernel(bool log_out, std::int64_t rows, std::int64_t c, T* out, const T* x) {
  __shared__ T smem[kThreads];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * c;
    T* yr = out + row * c;
    T m = MaxOp<T>::identity();
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) m = MaxOp<T>::combine(m, xr[j]);
    m = block_reduce<T, MaxOp<T>>(m, smem);
    if (!isfinite(m)) m = T(0);
    T s = T(0);
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) s += exp(xr[j] - m);
    s = block_reduce<T, SumOp<T>>(s, smem);
    if (log_out) {
      const T shift = m + log(s);
      for (std::int64_t j = threadIdx.x; j < c; j += kThreads) yr[j] = xr[j] - shift;
    } else {
      for (std::int64_t j = threadIdx.x; j < c; j += kThreads) yr[j] = exp(xr[j] - m) / s;
    }
  }
}

// softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g).
template <typename T>
__global__ void softmax_backward_kernel(bool log_out, std::int64_t rows, std::int64_t c, T* dx, const T* g,
                                        const T* y) {
  __shared__ T smem[kThreads];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* gr = g + row * c;
    const T* yr = y + row * c;
    T s = T(0);
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads) s += log_out ? gr[j] : gr[j] * yr[j];
    s = block_reduce<T, SumOp<T>>(s, smem);
    for (std::int64_t j = threadIdx.x; j < c; j += kThreads)
      dx[row * c + j] = log_out ? gr[j] - exp(yr[j]) * s : yr[j] * (gr[j] - s);
  }
}

unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>(rows < 65536 * 16 ? rows : 65536 * 16); }

template <int N>
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
  const auto outer = sub_indexer<1>(x, 0, kept);
  const auto inner = sub_indexer<1>(x, kept, x.ndim());
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
  const auto outer = sub_indexer<1>(x, 0, x.ndim() - 1);
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
