// gelu: x * Phi(x) (exact, with erf) or its tanh approximation, and the derivative
// Phi(x) + x * phi(x) (exact) / the tanh form's derivative. One pass, OpenMP over chunks.
//
// Cost: ~20 FLOPs and one erf or tanh per element; 8 bytes/element forward, 12 backward
// (float32). NumPy has no erf, so this replaces a per-element Python math.erf call.
// Measured 2026-11-22, AMD EPYC 2 vCPUs, float32, 4M elements, 2 threads: see
// benchmarks/RESULTS.md (gelu).
#include "kernels/gelu.h"

#include <cmath>

#include "parallel.h"

namespace pyzen {
namespace {

constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCoeff = 0.044715;
constexpr int64_t kGrain = 1 << 14;  // elements per thread below which threads cost more than they save

template <typename T>
inline T gelu_value(T v, bool tanh_approx) {
  if (tanh_approx) {
    const T t = std::tanh(T(kSqrt2OverPi) * (v + T(kCoeff) * v * v * v));
    return T(0.5) * v * (T(1) + t);
  }
  return T(0.5) * v * (T(1) + std::erf(v * T(kSqrtHalf)));
}

template <typename T>
inline T gelu_slope(T v, bool tanh_approx) {
  if (tanh_approx) {
    const T u = T(kSqrt2OverPi) * (v + T(kCoeff) * v * v * v);
    const T t = std::tanh(u);
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kCoeff) * v * v);
    return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * du;
  }
  const T cdf = T(0.5) * (T(1) + std::erf(v * T(kSqrtHalf)));
  const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
  return cdf + v * pdf;
}

}  // namespace

template <typename T>
void gelu_forward(const T* x, T* out, int64_t n, bool tanh_approx) {
#pragma omp parallel for num_threads(get_num_threads()) if (n > kGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = gelu_value(x[i], tanh_approx);
}

template <typename T>
void gelu_backward(const T* grad, const T* x, T* dx, int64_t n, bool tanh_approx) {
#pragma omp parallel for num_threads(get_num_threads()) if (n > kGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) dx[i] = grad[i] * gelu_slope(x[i], tanh_approx);
}

template void gelu_forward<float>(const float*, float*, int64_t, bool);
template void gelu_forward<double>(const double*, double*, int64_t, bool);
template void gelu_backward<float>(const float*, const float*, float*, int64_t, bool);
template void gelu_backward<double>(const double*, const double*, double*, int64_t, bool);

}  // namespace pyzen
