// AVX2 needs avx2+fma; AVX-512 needs avx512f/dq/vl/bw (the flags matmul_avx512.cpp is
// compiled with). __builtin_cpu_supports also checks that the OS saves the wider
// registers (XGETBV), so a CPU with AVX-512 under an OS that disables it reports false.
//
// AVX-512 is the default where present since 2026-12: on a Xeon with AVX-512 the whole suite
// (7,198 tests) and tools/sanitize.sh passed on that path (issue 12).
#include "cpu_features.h"

#include <atomic>
#include <stdexcept>

namespace pyzen {
namespace {

std::vector<Isa> detect() {
  std::vector<Isa> isas;
#if defined(PYZEN_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (avx512_present()) isas.push_back(Isa::avx512);
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
  throw std::invalid_argument(std::string(caller) + ": '" + name +
                              "' is not supported by this CPU (supported: " + supported + ")");
}

}  // namespace pyzen
