// Run-time CPU feature detection and the process-wide choice of instruction set for the
// CPU kernels. A wheel is built once with every ISA's micro-kernels inside; this file
// decides which of them may run on the machine the wheel lands on.
#pragma once

#include <string>
#include <vector>

namespace pyzen {

enum class Isa { scalar, avx2, avx512 };

// "scalar", "avx2" or "avx512".
const char* isa_name(Isa isa);

// The ISAs this CPU (and OS) can run, best first; always ends with Isa::scalar.
const std::vector<Isa>& supported_isas();

// Whether this CPU and OS can run the AVX-512 kernels.
bool avx512_present();

// The ISA the kernels use now. Starts as supported_isas().front().
Isa active_isa();

// Switch the kernels to `name`. Throws std::invalid_argument naming `caller` and the
// supported ISAs if `name` is unknown or not supported by this CPU.
void set_active_isa(const std::string& name, const char* caller);

}  // namespace pyzen
