// AVX-512 instantiation of the flash-attention kernels (attention_impl.h), compiled with
// -mavx512f/dq/vl/bw -mfma and called only when cpu_features reports avx512. Mirrors
// attention_avx2.cpp with 16-lane vectors: float32 8 x 32 micro-kernel tile (16 zmm
// accumulators), 64 x 64 tiles; float64 8 x 16, 32 x 64 tiles. Not yet measured (no
// AVX-512 machine); tests run it wherever the CPU has it.
#include "kernels/attention_impl.h"
#include "kernels/vec_avx512.h"

namespace pyzen::attention_detail {

void forward_avx512(const AttentionArgs<float>& a, int threads) {
  attn::Flash<Avx512F32, 8, 2, 64, 64>(a).forward(threads);
}
void forward_avx512(const AttentionArgs<double>& a, int threads) {
  attn::Flash<Avx512F64, 8, 2, 32, 64>(a).forward(threads);
}
void backward_avx512(const AttentionArgs<float>& a, int threads) {
  attn::Flash<Avx512F32, 8, 2, 64, 64>(a).backward(threads);
}
void backward_avx512(const AttentionArgs<double>& a, int threads) {
  attn::Flash<Avx512F64, 8, 2, 32, 64>(a).backward(threads);
}

}  // namespace pyzen::attention_detail
