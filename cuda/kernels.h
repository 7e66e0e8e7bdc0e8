// Host entry points of the pyzen CUDA kernels, over Arrays. Callers (bindings.cpp) have
// validated shapes, dtypes and dims; each entry point checks its launches.
#pragma once

#include <cstdint>

#include "array.h"

namespace pyzen::cuda {

// ---- elementwise.cu: every output may be strided (views: in-place updates, setitem) ----
void fill(const Array& out, double value, std::int64_t int_value);  // int_value for int64/bool
void iota(const Array& out, double start, double step);             // out contiguous
void copy(const Array& out, const Array& src);                      // same shape, casts dtype

enum class Unary { neg, abs, sign, exp, log, sqrt, sin, cos, tanh, sigmoid, gelu, gelu_tanh, round_bf16,
                   logical_not, isfinite };
void unary(Unary op, const Array& out, const Array& x);  // out dtype: x's, bool for the last two

enum class Binary { add, sub, mul, div, pow, maximum, minimum, gelu_backward, gelu_tanh_backward,
                    eq, ne, lt, le, gt, ge, logical_and, logical_or, logical_xor };
inline bool is_comparison(Binary op) { return op >= Binary::eq; }  // bool output
void binary(Binary op, const Array& out, const Array& a, const Array& b);
void where(const Array& out, const Array& cond, const Array& a, const Array& b);

// ---- reduce.cu: outputs contiguous ----
enum class Reduce { sum, prod, max, min, argmax, argmin };
// Reduces the last `nreduce` dims of x into out (shape x.shape[:-nreduce]).
void reduce(Reduce op, const Array& out, const Array& x, int nreduce);
void cumulative(bool product, const Array& out, const Array& x);  // along the last dim
void softmax(const Array& out, const Array& x, bool log);         // over the last dim
void softmax_backward(const Array& dx, const Array& g, const Array& y, bool log);

// ---- index.cu ----
// out = x.take(index, axis) for a 1-D int64 index: out.shape = x.shape[:axis] + (len,) + ...
void take(const Array& out, const Array& x, const Array& index, int axis);
// out = take_along_axis(x, index, axis); out.shape == index.shape.
void gather(const Array& out, const Array& x, const Array& index, int axis);
// out[.., index[i..], ..] (+)= values[i..] along axis; index and values of one shape.
void scatter(const Array& out, const Array& index, const Array& values, int axis, bool accumulate);

// ---- random.cu: Philox4x32-10 keyed by seed, counter (element block, offset) ----
void random_uniform(const Array& out, std::uint64_t seed, std::uint64_t offset);
void random_normal(const Array& out, std::uint64_t seed, std::uint64_t offset);
void random_int(const Array& out, std::int64_t low, std::int64_t high, std::uint64_t seed,
                std::uint64_t offset);

// ---- sort.cu: out (rows, n) int64 = each row's stable ascending order (NaN last), x (rows, n)
// contiguous, any dtype ----
void argsort(const Array& out, const Array& x);

// ---- matmul.cu: out (B..., M, N) contiguous = a (B..., M, K) @ b (B..., K, N), any strides;
// bf16 (float32 only): a and b rounded to bfloat16, tensor cores, float32 accumulation ----
void matmul(const Array& out, const Array& a, const Array& b, bool bf16 = false);

}  // namespace pyzen::cuda
