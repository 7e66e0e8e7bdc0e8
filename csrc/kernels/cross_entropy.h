// Fused softmax + negative log-likelihood (with label smoothing) on the CPU, float32 and
// float64: per-row losses forward, d(sum_i g_i * loss_i)/d(logits) backward.
#pragma once

#include <cstdint>

namespace pyzen {

// logits: C-contiguous (rows, classes); target: (rows,). losses, lse: (rows,) outputs.
template <typename T>
struct CrossEntropyForwardArgs {
  const T* logits;
  const int64_t* target;
  T* losses;
  T* lse;
  int64_t rows, classes, ignore_index;
  double label_smoothing;
};

// g, lse: (rows,); dlogits: C-contiguous (rows, classes) output.
template <typename T>
struct CrossEntropyBackwardArgs {
  const T* g;
  const T* logits;
  const int64_t* target;
  const T* lse;
  T* dlogits;
  int64_t rows, classes, ignore_index;
  double label_smoothing;
};

// Rows whose target is ignore_index get loss 0 and a zero gradient. A target outside
// [0, classes) is never used as an index: its row gets a NaN loss / NaN gradient, and the
// call returns the first such row (-1 when there is none) for the caller to report.
int64_t cross_entropy_forward(const CrossEntropyForwardArgs<float>& args);
int64_t cross_entropy_forward(const CrossEntropyForwardArgs<double>& args);
int64_t cross_entropy_backward(const CrossEntropyBackwardArgs<float>& args);
int64_t cross_entropy_backward(const CrossEntropyBackwardArgs<double>& args);

}  // namespace pyzen
