// layer_norm_impl.h compiled with -mavx2 -mfma (32-byte vectors); called only when
// cpu_features reports avx2. Algorithm and measurements: layer_norm.cpp.
#define PYZEN_SIMD_BYTES 32
#define PYZEN_LN_NS layer_norm_avx2
#include "kernels/layer_norm_impl.h"
