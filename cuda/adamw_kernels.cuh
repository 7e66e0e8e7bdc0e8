// Multi-tensor Adam / AdamW: one launch updates every parameter of a step (of one dtype),
// with the CPU kernel's per-element arithmetic and operation order
// (csrc/kernels/adamw_impl.h), so float32 results agree with it to about an ulp (nvcc may
// contract a multiply-add into an FMA where the CPU copy in use does not, or the reverse).
// In a header of its own so that cuda/host_check_training.cpp can also run it on the CPU.
//
// A multi-tensor launch (multi_tensor.cuh): one table entry per tensor with its pointers
// and per-step constants, about 40 tensors per launch; block b handles chunks b,
// b + gridDim.x, ...
// Per element: reads p, g, m, v (and vmax), writes p, m, v (and vmax): 28 bytes (36 with
// amsgrad) of DRAM traffic per float32 element and about 12 FLOPs with a sqrt and a
// division: bound by memory bandwidth.
//
// Speed: not yet measured on a GPU.
#pragma once

#include <cmath>

#include "common.cuh"
#include "multi_tensor.cuh"

namespace pyzen::cuda::adamw_kernels {

// Per-tensor constants, computed in double and rounded to T once, as the CPU kernel does.
template <typename T>
struct Coef {
  T decay, wd, one_minus_b1, b2, one_minus_b2, step_size, bias2_sqrt, eps;
};

template <typename T>
struct Entry {
  T* p;
  const T* g;
  T* m;
  T* v;
  T* vmax;  // null without amsgrad
  std::int64_t n;
  std::int64_t first_chunk;
  Coef<T> c;
};

struct Flags {
  bool decay, decoupled, maximize;
};
static_assert(sizeof(Table<Entry<float>>) <= 4096 && sizeof(Table<Entry<double>>) <= 4096, "kernel parameters over 4 KiB");

template <typename T>
Coef<T> make_coef(double lr, double beta1, double beta2, double eps, double weight_decay, double step) {
  return {T(1.0 - lr * weight_decay), T(weight_decay), T(1.0 - beta1), T(beta2), T(1.0 - beta2),
          T(lr / (1.0 - std::pow(beta1, step))), T(std::sqrt(1.0 - std::pow(beta2, step))), T(eps)};
}

// The flags are the same for every thread, so their branches cost no divergence.
template <typename T>
__device__ __forceinline__ void update(const Entry<T>& e, Flags f, std::int64_t i) {
  const Coef<T>& c = e.c;
  T p = e.p[i], g = e.g[i], m = e.m[i], v = e.v[i];
  if (f.maximize) g = -g;
  if (f.decay) {
    if (f.decoupled)
      p = p * c.decay;
    else
      g = g + c.wd * p;
  }
  m = m + c.one_minus_b1 * (g - m);
  v = v * c.b2 + (c.one_minus_b2 * g) * g;
  T denom_src = v;
  if (e.vmax) {
    const T vm = e.vmax[i];
    denom_src = vm > v ? vm : v;  // nan in v propagates, like np.maximum
    e.vmax[i] = denom_src;
  }
  e.p[i] = p - (c.step_size * m) / (sqrt(denom_src) / c.bias2_sqrt + c.eps);
  e.m[i] = m;
  e.v[i] = v;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) adamw_kernel(const __grid_constant__ Table<Entry<T>> table, Flags f) {
  for (std::int64_t chunk = blockIdx.x; chunk < table.chunks; chunk += gridDim.x) {
    const Entry<T>& e = table.e[entry_of(table, chunk)];
    const std::int64_t begin = (chunk - e.first_chunk) * kChunk;
    const std::int64_t end = begin + kChunk < e.n ? begin + kChunk : e.n;
    for (std::int64_t i = begin + threadIdx.x; i < end; i += kThreads) update(e, f, i);
  }
}

}  // namespace pyzen::cuda::adamw_kernels
