// adamw_impl.h compiled with -mavx2 -mfma (32-byte vectors); called only when cpu_features
// reports avx2. Algorithm and measurements: adamw.cpp.
#define PYZEN_SIMD_BYTES 32
#define PYZEN_ADAMW_NS adamw_avx2
#include "kernels/adamw_impl.h"
