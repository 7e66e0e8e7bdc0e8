// Scratch<T>: 64-byte aligned scratch for the CPU kernels (attention_impl.h, attention_amx.cpp,
// peak.cpp). Internal linkage and no std:: templates, as every header compiled with ISA
// flags (attention_impl.h).
#pragma once

#include <cstdint>
#include <new>

namespace {

// 64-byte aligned scratch, allocated before a parallel region so that std::bad_alloc
// reaches Python as MemoryError instead of terminating inside an OpenMP thread.
template <typename T>
struct Scratch {
  T* p;
  explicit Scratch(int64_t n)
      : p(static_cast<T*>(::operator new(sizeof(T) * static_cast<size_t>(n > 0 ? n : 1),
                                         std::align_val_t(64)))) {}
  ~Scratch() { ::operator delete(p, std::align_val_t(64)); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

}  // namespace
