// The loops that measure the machine's roofs for benchmarks: FMA peak and copy bandwidth.
#pragma once

#include <cstdint>

namespace pyzen {

// Runs `iters` rounds of independent float32 FMA chains on every thread with the active ISA's
// widest vectors; returns the number of floating-point operations performed (2 per FMA lane).
int64_t fma_loop(int64_t iters);

// Streams over a private working set of `bytes_per_thread` (two buffers x and y) `rounds`
// times on every thread with the active ISA's widest aligned loads and stores, after one
// untimed round (allocation, first touch); mode 0 reads (sums x), 1 copies (y = x), 2 updates
// in place (y += x). Returns the bytes read plus written per second.
double memory_bandwidth(int64_t bytes_per_thread, int64_t rounds, int mode);

}  // namespace pyzen
