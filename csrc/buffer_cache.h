// Reuse of the large result buffers of pyzen._C. A fresh multi-megabyte array costs page
// faults on first touch (the kernel zero-fills each page before the kernel's first write):
// a training step that allocates its activations and gradients anew every step spent 9 of
// its 54 ms there (the MLP step of benchmarks/bench_autocast_cpu.py, 3,600 faults a step).
// Buffers of at least kMinCachedBytes are kept on release, by size class, up to
// kCacheCapBytes in all, and handed out again for the next result of the same class.
#pragma once

#include <cstddef>

namespace pyzen {

inline constexpr size_t kMinCachedBytes = size_t(1) << 20;
inline constexpr size_t kCacheCapBytes = size_t(1) << 30;

// A 64-byte aligned block of at least `bytes` (>= kMinCachedBytes), reused when one of its
// size class was released; throws std::bad_alloc when memory is out.
void* cached_alloc(size_t bytes);

// Takes back a block from cached_alloc: kept for reuse while the cache holds less than
// kCacheCapBytes, freed otherwise.
void cached_free(void* block);

// Bytes held for reuse now (for tests).
size_t cached_bytes();

}  // namespace pyzen
