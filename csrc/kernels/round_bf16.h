// float32 -> nearest bfloat16 (ties to even) -> float32, for autocast's operands on the
// paths that compute in float32 (attention, and matmul where the CPU has no bfloat16 kernel).
#pragma once

#include <cstdint>

namespace pyzen {

// out[i] = x[i] rounded to bfloat16 (nearest, ties to even; denormals kept, NaN kept as is),
// for contiguous arrays of n floats. Elementwise, so any thread count gives the same bits.
void round_bf16(const float* x, float* out, int64_t n);

}  // namespace pyzen
