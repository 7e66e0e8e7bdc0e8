// AVX2 needs avx2+fma; AVX-512 needs avx512f/dq/vl/bw (the flags matmul_avx512.cpp is
// compiled with). __builtin_cpu_supports also checks that the OS saves the wider
// registers (XGETBV), so a CPU with AVX-512 under an OS that disables it reports false.
//
// The AVX-512 kernels are built from the same templates as the AVX2 ones but have not yet
// run on an AVX-512 machine, so they are offered only when PYZEN_AVX512=1: on such a machine,
// `PYZEN_AVX512=1 pytest` runs every kernel test on that path too. Until then AVX-512 CPUs
// use the verified AVX2 kernels.
#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace pyzen {
namespace {

bool avx512_enabled() {
  const char* env = std::getenv("PYZEN_AVX512");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

std::vector<Isa> detect() {
  std::vector<Isa> isas;
#if defined(PYZEN_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (avx512_present() && avx512_enabled()) isas.push_back(Isa::avx512);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    isas.push_back(Isa::avx2);
#endif
  isas.push_back(Isa::scalar);
  return isas;
}

std::atomic<int>& active() {
  static std::atomic<int> isa{static_cast<int>(supported_isas().front())};
  return isa;
}

}  // namespace

bool avx512_present() {
#if defined(PYZEN_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::scalar: return "scalar";
  }
  return "unknown";
}

const std::vector<Isa>& supported_isas() {
  static const std::vector<Isa> isas = detect();
  return isas;
}

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

void set_active_isa(const std::string& name, const char* caller) {
  std::string supported;
  for (Isa isa : supported_isas()) {
    if (name == isa_name(isa)) {
      active().store(static_cast<int>(isa), std::memory_order_relaxed);
      return;
    }
    supported += (supported.empty() ? "" : ", ") + std::string(isa_name(isa));
  }
  if (name == isa_name(Isa::avx512) && avx512_present())
    throw std::invalid_argument(std::string(caller) +
                                ": the AVX-512 kernels are off until verified on AVX-512 hardware; "
                                "set PYZEN_AVX512=1 to use them");
  throw std::invalid_argument(std::string(caller) + ": '" + name +
                              "' is not supported by this CPU (supported: " + supported + ")");
}

}  // namespace pyzen
