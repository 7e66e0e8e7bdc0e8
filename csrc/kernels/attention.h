// Fused softmax attention (flash-style) on the CPU, float32 and float64: forward with the
// log-sum-exp saved, backward that recomputes the probabilities from it.
#pragma once

#include <cstdint>

namespace pyzen {

// Element (b, i, c) of a batch of matrices at data[offset[b] + i * row_stride + c]: any
// per-item offsets (stride 0 = broadcast), any row stride, unit column stride.
template <typename T>
struct AttnRows {
  const T* data = nullptr;
  const int64_t* offset = nullptr;
  int64_t row_stride = 0;
};  // (no member functions: this header is also compiled with AVX-512 flags, see attention_impl.h)

enum class AttnMask { none, boolean, additive };

template <typename T>
struct AttentionArgs {
  int64_t n = 0;          // batch items (product of the leading dims)
  int64_t tq = 0, tk = 0;  // query and key lengths
  int64_t d = 0, dv = 0;   // head dims of q/k and of v
  T scale = T(1);
  bool causal = false;     // query i attends keys j <= i (top-left aligned)
  AttnRows<T> q, k, v;     // (n, tq, d), (n, tk, d), (n, tk, dv)
  // Optional mask, element (b, i, j) at mask[mask_offset[b] + i*mask_rs + j*mask_cs]:
  // uint8 (nonzero = attend) for AttnMask::boolean, T added to the scores for additive.
  AttnMask mask_kind = AttnMask::none;
  const void* mask = nullptr;
  const int64_t* mask_offset = nullptr;
  int64_t mask_rs = 0, mask_cs = 0;
  // Forward outputs, C-contiguous: out (n, tq, dv), lse (n, tq).
  T* out = nullptr;
  T* lse = nullptr;
  // Backward inputs: grad of out and out itself (n, tq, dv); lse (b, i) at
  // lse_in.data[lse_in.offset[b] + i * lse_in.row_stride].
  AttnRows<T> g, o, lse_in;
  // Backward outputs, C-contiguous: dq (n, tq, d), dk (n, tk, d), dv (n, tk, dv).
  T* dq = nullptr;
  T* dk = nullptr;
  T* dvv = nullptr;
};

// Both use active_isa() and get_num_threads(); results do not depend on the thread count.
// Fully masked query rows: out = NaN, lse = -inf, and they add nothing to any gradient.
// May throw std::bad_alloc (before any thread starts).
void attention_forward(const AttentionArgs<float>& args);
void attention_forward(const AttentionArgs<double>& args);
void attention_backward(const AttentionArgs<float>& args);
void attention_backward(const AttentionArgs<double>& args);

// Autocast's forward on AMX tiles (attention_amx.cpp): q, k, v and the probabilities rounded
// to bfloat16, float32 accumulation and softmax. Call only on the amx bfloat16 path
// (active_bf16_path()). Returns false, doing nothing, for calls it does not cover: a mask,
// D or Dv above 256. May throw std::bad_alloc (before any thread starts).
bool attention_forward_bf16(const AttentionArgs<float>& args);
// Its backward, likewise: g rounded too; P and dS rounded for their products.
bool attention_backward_bf16(const AttentionArgs<float>& args);

namespace attention_detail {
// One instantiation of attention_impl.h per ISA (attention_avx2.cpp, attention_avx512.cpp),
// run on `threads` OpenMP threads.
void forward_avx2(const AttentionArgs<float>&, int threads);
void forward_avx2(const AttentionArgs<double>&, int threads);
void backward_avx2(const AttentionArgs<float>&, int threads);
void backward_avx2(const AttentionArgs<double>&, int threads);
void forward_avx512(const AttentionArgs<float>&, int threads);
void forward_avx512(const AttentionArgs<double>&, int threads);
void backward_avx512(const AttentionArgs<float>&, int threads);
void backward_avx512(const AttentionArgs<double>&, int threads);
}  // namespace attention_detail

}  // namespace pyzen
