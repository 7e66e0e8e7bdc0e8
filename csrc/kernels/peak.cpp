// fma_loop: the compute peak the benchmarks compare kernels against. Each thread keeps
// kChains independent accumulators so FMA latency (4-5 cycles, 2 ports) is hidden; the
// vector width follows the active ISA (AVX-512: 16 floats, AVX2: 8, scalar: 1). Functions
// carry their ISA as a target attribute, and run only when the CPU has it.
//
// Measured 2026-11-22, AMD EPYC 2 vCPUs, AVX2, 2 threads: 195 GFLOP/s (an inline-asm FMA
// loop gives 203), the peak pyzen-bench's "% peak" column divides by (benchmarks/RESULTS.md).
//
// memory_bandwidth: the bandwidth roofs. Every thread streams over its own buffers with the
// active ISA's aligned vector loads and stores, reading (sum), copying or updating in place
// (y += x: no write-allocate reads, as in a kernel that updates what it read); pyzen-bench
// takes the best of the three at the working-set size of the row it compares.
#include "kernels/peak.h"

#include <algorithm>
#include <chrono>

#include "cpu_features.h"
#include "kernels/scratch.h"
#include "parallel.h"

#if defined(PYZEN_X86_KERNELS)
#include <immintrin.h>
#endif

namespace pyzen {
namespace {

constexpr int kChains = 10;

#if defined(PYZEN_X86_KERNELS)
__attribute__((target("avx512f"))) float chains_avx512(int64_t iters) {
  __m512 acc[kChains];
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(float(c));
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  float sum = 0.f;
  for (int c = 0; c < kChains; ++c) sum += _mm512_reduce_add_ps(acc[c]);
  return sum;
}

__attribute__((target("avx2,fma"))) float chains_avx2(int64_t iters) {
  __m256 acc[kChains];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(float(c));
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  alignas(32) float lanes[8];
  float sum = 0.f;
  for (int c = 0; c < kChains; ++c) {
    _mm256_store_ps(lanes, acc[c]);
    for (float v : lanes) sum += v;
  }
  return sum;
}
#endif

// The memory roof loops over a thread's buffers x and y (n floats each, n a multiple of 64,
// 64-byte aligned), `rounds` times: read (sum x), copy (y = x) or update (y += x). Written
// with GCC vector types of BYTES bytes and always inlined into a per-ISA wrapper, so each
// wrapper's loads and stores are that ISA's widest. The empty asm keeps rounds apart.
template <int BYTES>
struct FloatVec;
template <>
struct FloatVec<16> {
  typedef float type __attribute__((vector_size(16)));
};
template <>
struct FloatVec<32> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct FloatVec<64> {
  typedef float type __attribute__((vector_size(64)));
};

template <int BYTES>
__attribute__((always_inline)) inline float stream_rounds(int mode, const float* x, float* y, int64_t n,
                                                          int64_t rounds) {
  using vec = typename FloatVec<BYTES>::type;
  constexpr int64_t W = BYTES / 4;
  const vec* xv = reinterpret_cast<const vec*>(x);
  vec* yv = reinterpret_cast<vec*>(y);
  const int64_t nv = n / W;
  vec a0 = {}, a1 = {}, a2 = {}, a3 = {};
  for (int64_t r = 0; r < rounds; ++r) {
    // Two halves of each buffer walked side by side: more streams in flight, as kernels with
    // several operands have (an in-place update over 268 MB: 54 GB/s with 2 streams a
    // thread, 65 with 4, 58 with 8).
    const int64_t h = nv / 2;
    if (mode == 0) {
      for (int64_t i = 0; i < h; i += 2) {
        a0 += xv[i];
        a1 += xv[i + 1];
        a2 += xv[h + i];
        a3 += xv[h + i + 1];
      }
    } else if (mode == 1) {
      for (int64_t i = 0; i < h; ++i) {
        yv[i] = xv[i];
        yv[h + i] = xv[h + i];
      }
    } else {
      for (int64_t i = 0; i < h; ++i) {
        yv[i] += xv[i];
        yv[h + i] += xv[h + i];
      }
    }
    __asm__ volatile("" : : "r"(y) : "memory");
  }
  const vec a = a0 + a1 + a2 + a3;
  float sum = 0.f;
  for (int64_t l = 0; l < W; ++l) sum += a[l];
  return sum;
}

#if defined(PYZEN_X86_KERNELS)
__attribute__((target("avx512f"))) float stream_avx512(int mode, const float* x, float* y, int64_t n, int64_t rounds) {
  return stream_rounds<64>(mode, x, y, n, rounds);
}

__attribute__((target("avx2"))) float stream_avx2(int mode, const float* x, float* y, int64_t n, int64_t rounds) {
  return stream_rounds<32>(mode, x, y, n, rounds);
}
#endif

float stream_portable(int mode, const float* x, float* y, int64_t n, int64_t rounds) {
  return stream_rounds<16>(mode, x, y, n, rounds);
}

float chains_scalar(int64_t iters) {
  float acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = float(c);
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * 0.999999f + 1e-7f;
  float sum = 0.f;
  for (float v : acc) sum += v;
  return sum;
}

}  // namespace

int64_t fma_loop(int64_t iters) {
  const Isa isa = active_isa();
  int width = 1;
#if defined(PYZEN_X86_KERNELS)
  if (isa == Isa::avx512) width = 16;
  if (isa == Isa::avx2) width = 8;
#endif
  const int threads = get_num_threads();
  volatile float sink = 0.f;  // keeps the loops from being optimised away
#pragma omp parallel num_threads(threads)
  {
    float s;
#if defined(PYZEN_X86_KERNELS)
    if (isa == Isa::avx512)
      s = chains_avx512(iters);
    else if (isa == Isa::avx2)
      s = chains_avx2(iters);
    else
#endif
      s = chains_scalar(iters);
#pragma omp critical
    sink = sink + s;
  }
  (void)sink;
  return iters * kChains * width * 2 * threads;
}

double memory_bandwidth(int64_t bytes_per_thread, int64_t rounds, int mode) {
  const Isa isa = active_isa();
  const int64_t n = bytes_per_thread / 8 / 64 * 64;  // floats in each of x and y
  const int threads = get_num_threads();
  // Allocated here, not in the parallel region: a std::bad_alloc must not leave a thread.
  // y starts kSkew floats past the end of x, so that x[i] and y[i] do not sit at addresses
  // equal modulo 4 KiB, where loads can wait on unrelated stores (update over 268 MB: 56-57
  // -> 57-67 GB/s; the roof must not be the slower loop).
  constexpr int64_t kSkew = 272;
  const int64_t span = 2 * n + kSkew;
  Scratch<float> buf(span * threads);
  std::fill(buf.p, buf.p + span * threads, 1.0f);
  double seconds = 0.0;
  volatile float sink = 0.f;
#pragma omp parallel num_threads(threads)
  {
    const float* x = buf.p + span * thread_id();
    float* y = buf.p + span * thread_id() + n + kSkew;
    for (int timed = 0; timed < 2; ++timed) {  // one untimed round warms the caches and pages
#pragma omp barrier
      const auto start = std::chrono::steady_clock::now();
      const int64_t reps = timed ? rounds : 1;
      float s;
#if defined(PYZEN_X86_KERNELS)
      if (isa == Isa::avx512)
        s = stream_avx512(mode, x, y, n, reps);
      else if (isa == Isa::avx2)
        s = stream_avx2(mode, x, y, n, reps);
      else
#endif
        s = stream_portable(mode, x, y, n, reps);
#pragma omp barrier
#pragma omp master
      {
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        sink = sink + s;
      }
    }
  }
  const double bytes_per_float = mode == 0 ? 4 : mode == 1 ? 8 : 12;
  return seconds > 0 ? bytes_per_float * n * rounds * threads / seconds : 0.0;
}

}  // namespace pyzen
