// The CPU kernels' thread count, and OpenMP calls that compile to the one-thread answer
// when pyzen is built without OpenMP.
#pragma once

#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyzen {

inline constexpr bool kHasOpenMP =
#ifdef _OPENMP
    true;
#else
    false;
#endif

// Kept here rather than in OpenMP's per-thread ICV so that a kernel called from any
// Python thread uses the number set by set_num_threads.
inline std::atomic<int>& num_threads_setting() {
#ifdef _OPENMP
  static std::atomic<int> n{omp_get_max_threads()};
#else
  static std::atomic<int> n{1};
#endif
  return n;
}

inline int get_num_threads() { return num_threads_setting().load(std::memory_order_relaxed); }

// n >= 1; without OpenMP the setting is ignored and get_num_threads() stays 1.
inline void set_num_threads(int n) {
  if (kHasOpenMP) num_threads_setting().store(n, std::memory_order_relaxed);
}

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

}  // namespace pyzen
