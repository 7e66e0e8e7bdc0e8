// The elementwise kernels (see elementwise.cu for the scheme and the launches). In a header of their
// own so that cuda/host_check.cpp can also run them on the CPU.
#pragma once

#include <type_traits>

#include "bf16.cuh"
#include "common.cuh"
#include "kernels.h"

namespace pyzen::cuda::elementwise_kernels {

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;

template <typename T>
__global__ void fill_kernel(std::int64_t n, T* out, T value, Indexer<1> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[1];
    ix.offsets(i, off);
    out[off[0]] = value;
  }
}

template <typename T>
__global__ void iota_kernel(std::int64_t n, T* out, double start, double step) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = static_cast<T>(start + step * static_cast<double>(i));
}

template <typename O, typename I>
__device__ __forceinline__ O cast(I v) {
  if constexpr (std::is_same_v<O, bool>) return v != I(0);  // nan is true, as in NumPy
  else return static_cast<O>(v);
}

template <typename O, typename I>
__global__ void copy_kernel(std::int64_t n, O* out, const I* in, Indexer<2> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[2];
    ix.offsets(i, off);
    out[off[0]] = cast<O>(in[off[1]]);
  }
}

template <typename T>
__device__ __forceinline__ T unary_op(Unary op, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case Unary::neg: return -v;
      case Unary::abs: return fabs(v);
      case Unary::sign: return v > T(0) ? T(1) : (v < T(0) ? T(-1) : v);  // keeps 0 and nan
      case Unary::exp: return exp(v);
      case Unary::log: return log(v);
      case Unary::sqrt: return sqrt(v);
      case Unary::sin: return sin(v);
      case Unary::cos: return cos(v);
      case Unary::tanh: return tanh(v);
      case Unary::sigmoid: {  // exp of a non-positive number never overflows
        const T e = exp(-fabs(v));
        return v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
      }
      case Unary::gelu: return T(0.5) * v * (T(1) + erf(v * T(kInvSqrt2)));
      case Unary::gelu_tanh:
        return T(0.5) * v * (T(1) + tanh(T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v)));
      case Unary::round_bf16: return T(bf16_float(bf16_bits(float(v))));  // the host allows float32 only
      default: return v;  // bool-output ops use unary_bool
    }
  } else {
    switch (op) {  // integer and bool inputs: the host allows only these
      case Unary::neg: return static_cast<T>(-v);
      case Unary::abs: return v < T(0) ? static_cast<T>(-v) : v;
      case Unary::sign: return static_cast<T>(v > T(0) ? 1 : (v < T(0) ? -1 : 0));
      default: return v;
    }
  }
}

template <typename T>
__device__ __forceinline__ bool unary_bool(Unary op, T v) {
  if (op == Unary::logical_not) return v == T(0);
  if constexpr (std::is_floating_point_v<T>) return isfinite(v);  // Unary::isfinite
  else return true;
}

template <typename T, typename O>
__global__ void unary_kernel(Unary op, std::int64_t n, O* out, const T* x, Indexer<2> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[2];
    ix.offsets(i, off);
    if constexpr (std::is_same_v<O, bool>) out[off[0]] = unary_bool(op, x[off[1]]);
    else out[off[0]] = unary_op(op, x[off[1]]);
  }
}

template <typename T>
__device__ __forceinline__ T int_pow(T base, T e) {
  if (e < T(0)) return static_cast<T>(base == T(1) ? 1 : (base == T(-1) ? ((e & 1) ? -1 : 1) : 0));
  T r = T(1);
  while (e > T(0)) {
    if (e & 1) r = static_cast<T>(r * base);
    base = static_cast<T>(base * base);
    e >>= 1;
  }
  return r;
}

template <typename T>
__device__ __forceinline__ T binary_op(Binary op, T x, T y) {
  switch (op) {
    case Binary::add: return static_cast<T>(x + y);
    case Binary::sub: return static_cast<T>(x - y);
    case Binary::mul: return static_cast<T>(x * y);
    case Binary::maximum:  // nan propagates, as in NumPy
      return is_nan(x) ? x : (is_nan(y) ? y : (x > y ? x : y));
    case Binary::minimum:
      return is_nan(x) ? x : (is_nan(y) ? y : (x < y ? x : y));
    default: break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case Binary::div: return x / y;
      case Binary::pow: return pow(x, y);
      case Binary::gelu_backward: {  // x: incoming gradient, y: the gelu input
        const T cdf = T(0.5) * (T(1) + erf(y * T(kInvSqrt2)));
        const T pdf = T(kInvSqrt2Pi) * exp(T(-0.5) * y * y);
        return x * (cdf + y * pdf);
      }
      case Binary::gelu_tanh_backward: {
        const T inner = T(kSqrt2OverPi) * (y + T(0.044715) * y * y * y);
        const T t = tanh(inner);
        const T dinner = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * y * y);
        return x * (T(0.5) * (T(1) + t) + T(0.5) * y * (T(1) - t * t) * dinner);
      }
      default: return x;
    }
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    if (op == Binary::pow) return int_pow(x, y);
    return x;
  } else {
    return x;
  }
}

template <typename T>
__device__ __forceinline__ bool compare_op(Binary op, T x, T y) {
  switch (op) {
    case Binary::eq: return x == y;
    case Binary::ne: return x != y;
    case Binary::lt: return x < y;
    case Binary::le: return x <= y;
    case Binary::gt: return x > y;
    case Binary::ge: return x >= y;
    case Binary::logical_and: return (x != T(0)) && (y != T(0));
    case Binary::logical_or: return (x != T(0)) || (y != T(0));
    case Binary::logical_xor: return (x != T(0)) != (y != T(0));
    default: return false;
  }
}

__device__ __forceinline__ bool is_comparison_op(Binary op) { return op >= Binary::eq; }

template <typename T, typename O>
__global__ void binary_kernel(Binary op, std::int64_t n, O* out, const T* a, const T* b, Indexer<3> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[3];
    ix.offsets(i, off);
    if constexpr (std::is_same_v<O, bool> && !std::is_same_v<T, bool>) out[off[0]] = compare_op(op, a[off[1]], b[off[2]]);
    else if constexpr (std::is_same_v<T, bool>)
      out[off[0]] = is_comparison_op(op) ? compare_op(op, a[off[1]], b[off[2]]) : binary_op(op, a[off[1]], b[off[2]]);
    else out[off[0]] = binary_op(op, a[off[1]], b[off[2]]);
  }
}

template <typename T>
__global__ void where_kernel(std::int64_t n, T* out, const bool* cond, const T* a, const T* b, Indexer<4> ix) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t off[4];
    ix.offsets(i, off);
    out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
  }
}

}  // namespace pyzen::cuda::elementwise_kernels
