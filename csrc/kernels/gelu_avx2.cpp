// gelu_impl.h compiled with -mavx2 -mfma (8 floats a vector); called only when cpu_features
// reports avx2. Algorithm and measurements: gelu.cpp.
#define PYZEN_SIMD_BYTES 32
#define PYZEN_GELU_NS gelu_avx2
#include "kernels/gelu_impl.h"
