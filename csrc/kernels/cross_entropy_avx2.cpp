// cross_entropy_impl.h compiled with -mavx2 -mfma (32-byte vectors); called only when
// cpu_features reports avx2. Algorithm and measurements: cross_entropy.cpp.
#define PYZEN_SIMD_BYTES 32
#define PYZEN_CE_NS cross_entropy_avx2
#include "kernels/cross_entropy_impl.h"
