// Vector types and unaligned loads/stores for the kernels written over GCC/Clang vector
// extensions (*_impl.h). Include after defining PYZEN_SIMD_BYTES (16, 32 or 64): every
// per-ISA translation unit gets its own copy, in an anonymous namespace, so copies compiled
// with different instruction sets never merge at link time.
#pragma once

#include <cstdint>
#include <cstring>

#if !defined(PYZEN_SIMD_BYTES)
#error "define PYZEN_SIMD_BYTES before including kernels/simd.h"
#endif

namespace pyzen {
namespace {

template <typename T>
struct Simd {
  static constexpr int64_t W = PYZEN_SIMD_BYTES / sizeof(T);  // lanes
  typedef T vec __attribute__((vector_size(PYZEN_SIMD_BYTES)));
};

template <typename V, typename T>
inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T, typename V>
inline void store(T* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace
}  // namespace pyzen
