// layer_norm: y = (x - mean) * rstd * weight + bias over the last dim, and its backward.
//
// Forward, per row (the row stays in L1/L2 between passes, so DRAM sees it once):
//   pass 1  d = x - x[0], mean(d)          shifted data: exact for nearly-constant rows
//   pass 2  var = mean((d - mean(d))^2)    two-pass, never E[x^2] - E[x]^2
//   pass 3  y = ((x - x[0]) - mean(d)) * rstd [* weight] [+ bias]
// Lane sums are flushed to double every 64 vectors, so float32 rows of any length keep
// float32-sized rounding. Rows are split evenly across threads.
// Backward, ONE sweep over the rows: pass 1 over a row sums gw = g*weight and gw*xhat and
// adds g*xhat, g into the dweight/dbias partials of the row's chunk; pass 2 writes
// dx = rstd * (gw - mean(gw) - xhat * mean(gw*xhat)). The rows are cut into a fixed set of
// chunks (<= 256, >= 32 rows; a function of the shape only), and the chunk partials are
// summed in chunk order, so results are bitwise the same for any thread count.
//
// Cost per element (float32): forward ~8 FLOPs, 8 bytes (read x, write y); backward ~14
// FLOPs, 12 bytes (read g, x; write dx) plus 2*4*cols*chunks bytes of partials.
// Vectorised with GCC/Clang vector extensions: one source (layer_norm_impl.h) compiled for
// portable (16-byte vectors), AVX2+FMA and AVX-512; active_isa() picks at run time.
//
// Idea log (8192x768 float32, one thread, A/B in one process on the noisy machine below):
// v1 two accumulators per sum, plain stores; v2 non-temporal stores for outputs > 8 MiB (no
// read-for-ownership) and four accumulators (hide the add latency): forward 4.7 -> 3.0 ms,
// backward 5.9 -> 4.4 ms; v3 software prefetch of the next row in the forward: 3.0 -> 2.6
// ms (the same prefetch in the backward made it slower and was dropped).
// Measured 2026-11-22, AMD EPYC 2 vCPUs (AVX2, KVM, shared: load average 3.5-4.8),
// float32, forward+backward, best of interleaved runs (benchmarks/bench_layer_norm.py):
//   2 threads: 8192x768 5.9 ms = 21.5 GB/s (86% of np.copyto bandwidth), 1.77x PyTorch
//   2.13 native_layer_norm(+_backward), 13x NumPy; 65536x1024 95 ms = 14 GB/s (56%: about
//   40 ms of it is the kernel zeroing the two fresh 256 MiB outputs on first touch),
//   4.5x PyTorch, 11x NumPy.
// v4 (numerical robustness): the backward recomputes the row mean from x where the forward's
// rounded mean would show in dx (|mean| > 8 std); A/B against v3 in one process
// (benchmarks/ab_native_builds.py, 16384x1024, 2 threads, best of 7): forward 0.98x,
// backward 0.90-0.98x the old time, i.e. no measurable cost.
#include "kernels/layer_norm.h"

#include "cpu_features.h"

#define PYZEN_SIMD_BYTES 16
#define PYZEN_LN_NS layer_norm_portable
#include "kernels/layer_norm_impl.h"

namespace pyzen {

#ifdef PYZEN_X86_KERNELS
#define PYZEN_DECLARE_LN(ns)                                  \
  namespace ns {                                              \
  void forward(const LayerNormForwardArgs<float>& a);         \
  void forward(const LayerNormForwardArgs<double>& a);        \
  void backward(const LayerNormBackwardArgs<float>& a);       \
  void backward(const LayerNormBackwardArgs<double>& a);      \
  }
PYZEN_DECLARE_LN(layer_norm_avx2)
PYZEN_DECLARE_LN(layer_norm_avx512)
#undef PYZEN_DECLARE_LN
#endif

namespace {

template <typename Args>
void forward_on_isa(const Args& a) {
#ifdef PYZEN_X86_KERNELS
  switch (active_isa()) {
    case Isa::avx512: return layer_norm_avx512::forward(a);
    case Isa::avx2: return layer_norm_avx2::forward(a);
    case Isa::scalar: break;
  }
#endif
  layer_norm_portable::forward(a);
}

template <typename Args>
void backward_on_isa(const Args& a) {
#ifdef PYZEN_X86_KERNELS
  switch (active_isa()) {
    case Isa::avx512: return layer_norm_avx512::backward(a);
    case Isa::avx2: return layer_norm_avx2::backward(a);
    case Isa::scalar: break;
  }
#endif
  layer_norm_portable::backward(a);
}

}  // namespace

void layer_norm_forward(const LayerNormForwardArgs<float>& a) { forward_on_isa(a); }
void layer_norm_forward(const LayerNormForwardArgs<double>& a) { forward_on_isa(a); }
void layer_norm_backward(const LayerNormBackwardArgs<float>& a) { backward_on_isa(a); }
void layer_norm_backward(const LayerNormBackwardArgs<double>& a) { backward_on_isa(a); }

}  // namespace pyzen
