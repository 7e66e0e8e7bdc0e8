// GELU forward and backward on the CPU, exact (erf) and tanh forms, float32 and float64.
#pragma once

#include <cstdint>

namespace pyzen {

// out[i] = gelu(x[i]); contiguous arrays of n elements.
template <typename T>
void gelu_forward(const T* x, T* out, int64_t n, bool tanh_approx);

// dx[i] = grad[i] * gelu'(x[i]).
template <typename T>
void gelu_backward(const T* grad, const T* x, T* dx, int64_t n, bool tanh_approx);

}  // namespace pyzen
