// layer_norm_impl.h compiled with -mavx512f/dq/vl/bw -mfma (64-byte vectors); called only
// when cpu_features reports avx512. The same source as the AVX2 and portable builds, so its
// correctness rests on theirs. Measured: not yet (no AVX-512 machine available).
#define PYZEN_SIMD_BYTES 64
#define PYZEN_LN_NS layer_norm_avx512
#include "kernels/layer_norm_impl.h"
