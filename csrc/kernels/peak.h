// A floating-point FMA loop that measures the machine's compute peak for benchmarks.
#pragma once

#include <cstdint>

namespace pyzen {

// Runs `iters` rounds of independent float32 FMA chains on every thread with the active ISA's
// widest vectors; returns the number of floating-point operations performed (2 per FMA lane).
int64_t fma_loop(int64_t iters);

}  // namespace pyzen
