// One fused Adam/AdamW step over many parameters on the CPU, float32 and float64.
#pragma once

#include <cstdint>
#include <vector>

namespace pyzen {

// One parameter and its state: contiguous arrays of n elements, updated in place.
template <typename T>
struct AdamwTensor {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  T* max_exp_avg_sq;  // nullptr unless amsgrad
  int64_t n;
  double step;  // this parameter's step count after this step (>= 1), for bias correction
};

struct AdamwHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW (p *= 1 - lr*wd) instead of Adam's L2 term (g += wd*p)
  bool maximize;
};

// Updates every tensor of both lists in one parallel sweep over fixed-size chunks of
// elements (across tensors). Elementwise, so the result never depends on the thread count.
void adamw_step(const std::vector<AdamwTensor<float>>& f32, const std::vector<AdamwTensor<double>>& f64,
                const AdamwHyper& h);

}  // namespace pyzen
