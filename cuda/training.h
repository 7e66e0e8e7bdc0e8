// Host entry points of the dedicated training kernels (layer_norm.cu, adamw.cu,
// cross_entropy.cu, attention.cu, embedding.cu, foreach.cu). Callers
// (bindings.cpp) have validated shapes, dtypes and contiguity; each entry point checks
// its launches.
#pragma once

#include <cstdint>
#include <vector>

#include "array.h"

namespace pyzen::cuda {

// x (rows..., C) contiguous; out like x; mean, rstd (rows...); weight, bias (C,) or null.
void layer_norm_forward(const Array& out, const Array& mean, const Array& rstd, const Array& x, const Array* weight,
                        const Array* bias, double eps);
// dx like x; dweight, dbias (C,) or null; weight (C,) or null.
void layer_norm_backward(const Array& dx, const Array* dweight, const Array* dbias, const Array& g, const Array& x,
                         const Array* weight, const Array& mean, const Array& rstd);

struct AdamwArgs {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled, maximize;
};
// One step over every tensor: params[i] and its states updated in place; all of one float
// dtype and contiguous; max_exp_avg_sqs empty without amsgrad.
void adamw_step(const std::vector<Array>& params, const std::vector<Array>& grads, const std::vector<Array>& exp_avgs,
                const std::vector<Array>& exp_avg_sqs, const std::vector<Array>& max_exp_avg_sqs,
                const std::vector<double>& steps, const AdamwArgs& h);

// logits (N, C), target (N,) int64, losses and lse (N,): all contiguous.
void cross_entropy_forward(const Array& losses, const Array& lse, const Array& logits, const Array& target,
                           std::int64_t ignore_index, double label_smoothing);
// dlogits like logits; g, lse (N,).
void cross_entropy_backward(const Array& dlogits, const Array& g, const Array& logits, const Array& target,
                            const Array& lse, std::int64_t ignore_index, double label_smoothing);

// Flash attention, float32 arrays: q (BH, Tq, D), k and v (BH, Tk, D) with D 32, 64 or 128;
// out like q, lse (BH, Tq); all contiguous. bf16: q, k, v rounded to bfloat16 and the
// products on tensor cores (float32 accumulation, output and lse).
void attention_forward(const Array& out, const Array& lse, const Array& q, const Array& k, const Array& v, bool causal,
                       double scale, bool bf16);
// dq like q, dk and dv like k; g and out like q; bf16 as for the forward (g rounded too).
void attention_backward(const Array& dq, const Array& dk, const Array& dv, const Array& g, const Array& q, const Array& k,
                        const Array& v, const Array& out, const Array& lse, bool causal, double scale, bool bf16);

// out (len(xs),) float64 = each tensor's sum of squares; xs of one float dtype, contiguous.
void foreach_sum_squares(const Array& out, const std::vector<Array>& xs);
// Every tensor of xs times scale (one element of their dtype), in place; xs contiguous.
void foreach_mul_(const std::vector<Array>& xs, const Array& scale);

// out (rows, cols) = the sum of g's rows (n, cols) by index (n,) int64 (negative wraps,
// out of range is dropped), each row's terms added in position order: deterministic.
// out and g float32 or float64, all contiguous; n < 2^32, rows < 2^31.
void embedding_backward(const Array& out, const Array& g, const Array& index);

}  // namespace pyzen::cuda
