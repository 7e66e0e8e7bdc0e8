// fma_loop: the compute peak the benchmarks compare kernels against. Each thread keeps
// kChains independent accumulators so FMA latency (4-5 cycles, 2 ports) is hidden; the
// vector width follows the active ISA (AVX-512: 16 floats, AVX2: 8, scalar: 1). Functions
// carry their ISA as a target attribute, and run only when the CPU has it.
//
// Measured 2026-11-22, AMD EPYC 2 vCPUs, AVX2, 2 threads: 195 GFLOP/s (an inline-asm FMA
// loop gives 203), the peak pyzen-bench's "% peak" column divides by (benchmarks/RESULTS.md).
#include "kernels/peak.h"

#include "cpu_features.h"
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

}  // namespace pyzen
