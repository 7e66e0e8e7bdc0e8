// AVX2+FMA instantiation of the flash-attention kernels (attention_impl.h), compiled with
// -mavx2 -mfma and called only when cpu_features reports avx2. float32: 6 x 16 micro-kernel
// tile (12 ymm accumulators + 2 B vectors + 1 broadcast), 64 queries x 64 keys per tile, a
// polynomial exp2 (~1.5 ulp). float64: 6 x 8 tile, 32 x 64 tiles, libm exp2.
#include "kernels/attention_impl.h"
#include "kernels/vec_avx2.h"

namespace pyzen::attention_detail {

void forward_avx2(const AttentionArgs<float>& a, int threads) {
  attn::Flash<Avx2F32, 6, 2, 64, 64>(a).forward(threads);
}
void forward_avx2(const AttentionArgs<double>& a, int threads) {
  attn::Flash<Avx2F64, 6, 2, 32, 64>(a).forward(threads);
}
void backward_avx2(const AttentionArgs<float>& a, int threads) {
  attn::Flash<Avx2F32, 6, 2, 64, 64>(a).backward(threads);
}
void backward_avx2(const AttentionArgs<double>& a, int threads) {
  attn::Flash<Avx2F64, 6, 2, 32, 64>(a).backward(threads);
}

}  // namespace pyzen::attention_detail
