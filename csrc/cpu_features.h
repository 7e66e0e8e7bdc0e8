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

// Where autocast's bfloat16 products run: AMX tiles (TDPBF16PS), AVX512-BF16 (VDPBF16PS),
// or the float32 kernels on rounded operands. The first two pack with AVX-512 and are used
// only while the active ISA is avx512.
enum class Bf16Path { amx, avx512_bf16, float32 };

// "amx", "avx512_bf16" or "float32".
const char* bf16_path_name(Bf16Path path);

// The bfloat16 paths usable now, in the order amx, avx512_bf16, float32 (always there): those
// this CPU (and OS) can run while the active ISA is avx512, float32 alone otherwise. AMX is
// listed once the Linux kernel has granted this process the tile data state
// (arch_prctl(ARCH_REQ_XCOMP_PERM)), requested once, on the first call.
std::vector<Bf16Path> supported_bf16_paths();

// Why a bfloat16 path the CPU has is missing (e.g. the kernel refused AMX), or "".
const std::string& bf16_note();

// The path bfloat16 products take now: the one set (initially amx where supported, else
// float32; see cpu_features.cpp), or float32 while the active ISA is not avx512.
Bf16Path active_bf16_path();

// Switch to `name`, one of supported_bf16_paths(); throws std::invalid_argument naming
// `caller` and the supported paths otherwise.
void set_bf16_path(const std::string& name, const char* caller);

}  // namespace pyzen
