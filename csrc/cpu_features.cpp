// AVX2 needs avx2+fma; AVX-512 needs avx512f/dq/vl/bw (the flags matmul_avx512.cpp is
// compiled with). __builtin_cpu_supports also checks that the OS saves the wider
// registers (XGETBV), so a CPU with AVX-512 under an OS that disables it reports false.
//
// AVX-512 is the default where present since 2026-12: on a Xeon with AVX-512 the whole suite
// (7,198 tests) and tools/sanitize.sh passed on that path (issue 12).
//
// bfloat16 paths: avx512_bf16 needs the AVX-512 set above plus avx512bf16; amx adds
// amx-tile and amx-bf16, and on Linux the kernel's permission to use the tile data state,
// which a process must request (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)) before
// its first tile instruction, or that instruction faults. Elsewhere AMX is not offered.
#include "cpu_features.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

// Stores the option called `name` in `slot`, or throws std::invalid_argument listing the
// options: "<what> is not supported by this CPU (supported: a, b)<note>".
template <typename E>
void select_by_name(const std::vector<E>& options, const char* (*name_of)(E), const std::string& name,
                    std::atomic<int>& slot, const std::string& what, const std::string& note) {
  std::string supported;
  for (E option : options) {
    if (name == name_of(option)) {
      slot.store(static_cast<int>(option), std::memory_order_relaxed);
      return;
    }
    supported += (supported.empty() ? "" : ", ") + std::string(name_of(option));
  }
  throw std::invalid_argument(what + " is not supported by this CPU (supported: " + supported + ")" + note);
}

// Asks Linux for the AMX tile data state; "" when granted, else why not.
std::string request_amx() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
    return std::string("the kernel refused AMX tile data (arch_prctl: ") + std::strerror(errno) + ")";
  unsigned long features = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &features) != 0 ||
      !(features & (1ul << kXfeatureXtiledata)))
    return "the kernel did not grant AMX tile data";
  return "";
#else
  return "AMX needs Linux's arch_prctl permission request";
#endif
}

struct Bf16Support {
  std::vector<Bf16Path> paths;
  std::string note;
};

const Bf16Support& bf16_support() {
  static const Bf16Support support = [] {
    Bf16Support s;
#if defined(PYZEN_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (avx512_present() && __builtin_cpu_supports("avx512bf16")) {
      if (__builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16")) {
        s.note = request_amx();
        if (s.note.empty()) s.paths.push_back(Bf16Path::amx);
      }
      s.paths.push_back(Bf16Path::avx512_bf16);
    }
#endif
    s.paths.push_back(Bf16Path::float32);
    return s;
  }();
  return support;
}

// AMX when present, else the float32 kernels: VDPBF16PS was measured at half the float32
// FMA's FLOP rate on a Sapphire Rapids Xeon (one instruction per cycle against two FMAs, so
// 0.5x), so avx512_bf16 is opt-in until a CPU where it wins (AMD Zen 4/5?) is measured.
std::atomic<int>& active_bf16() {
  const std::vector<Bf16Path>& paths = bf16_support().paths;
  static std::atomic<int> path{static_cast<int>(paths.front() == Bf16Path::amx ? Bf16Path::amx : Bf16Path::float32)};
  return path;
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
  select_by_name(supported_isas(), isa_name, name, active(), std::string(caller) + ": '" + name + "'", "");
}

const char* bf16_path_name(Bf16Path path) {
  switch (path) {
    case Bf16Path::amx: return "amx";
    case Bf16Path::avx512_bf16: return "avx512_bf16";
    case Bf16Path::float32: return "float32";
  }
  return "unknown";
}

std::vector<Bf16Path> supported_bf16_paths() {
  if (active_isa() != Isa::avx512) return {Bf16Path::float32};
  return bf16_support().paths;
}

const std::string& bf16_note() { return bf16_support().note; }

Bf16Path active_bf16_path() {
  if (active_isa() != Isa::avx512) return Bf16Path::float32;
  return static_cast<Bf16Path>(active_bf16().load(std::memory_order_relaxed));
}

void set_bf16_path(const std::string& name, const char* caller) {
  select_by_name(supported_bf16_paths(), bf16_path_name, name, active_bf16(),
                 std::string(caller) + ": bfloat16 path '" + name + "'",
                 bf16_note().empty() ? "" : "; " + bf16_note());
}

}  // namespace pyzen
