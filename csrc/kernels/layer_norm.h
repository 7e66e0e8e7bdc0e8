// Layer normalisation over the last dimension on the CPU, float32 and float64.
#pragma once

#include <cstdint>

namespace pyzen {

// x, out: C-contiguous (rows, cols). weight, bias: (cols,) or nullptr. mean, rstd: (rows,).
template <typename T>
struct LayerNormForwardArgs {
  const T* x;
  const T* weight;
  const T* bias;
  T* out;
  T* mean;
  T* rstd;
  int64_t rows, cols;
  double eps;
};

// g, x, dx: C-contiguous (rows, cols). weight: (cols,) or nullptr (then dweight must be
// nullptr too). dweight, dbias: (cols,) outputs or nullptr when not wanted.
template <typename T>
struct LayerNormBackwardArgs {
  const T* g;
  const T* x;
  const T* weight;
  const T* mean;
  const T* rstd;
  T* dx;
  T* dweight;
  T* dbias;
  int64_t rows, cols;
};

// Both use the ISA from active_isa() and get_num_threads() threads; results do not depend
// on the thread count (dweight/dbias are reduced over a fixed row partition in order).
void layer_norm_forward(const LayerNormForwardArgs<float>& args);
void layer_norm_forward(const LayerNormForwardArgs<double>& args);
void layer_norm_backward(const LayerNormBackwardArgs<float>& args);
void layer_norm_backward(const LayerNormBackwardArgs<double>& args);

}  // namespace pyzen
