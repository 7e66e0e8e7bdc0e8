// gelu_impl.h compiled with -mavx512f (16 floats a vector); called only when cpu_features
// reports avx512. Algorithm and measurements: gelu.cpp.
#define PYZEN_SIMD_BYTES 64
#define PYZEN_GELU_NS gelu_avx512
#include "kernels/gelu_impl.h"
