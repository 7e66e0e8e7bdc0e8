// cross_entropy: fused log-softmax + NLL with label smoothing over (N, C) logits.
//
// Forward, ONE pass per row (online logsumexp): the row is read in blocks of 64 vectors;
// each block's max is taken while the block sits in L1, the running sum of e^(x - max) is
// rescaled (one scalar exp) only when the max grows, and e^(x - max) is summed over the
// block (block sums in double). With label smoothing the same pass sums the logits.
//   loss = (1 - ls) (lse - x[t]) + ls (lse - mean(x));  rows with t == ignore_index: 0.
// Backward, one pass per row: d = g * (e^(x - lse) - ls/C), then d[t] -= g (1 - ls).
// The saved lse was rounded to float32; where that rounding shows in the probabilities
// (float32 rows with |lse| > 32) the backward recomputes it as max + (lse - max): one more
// exp pass for those rows only. A row holding +inf gives nan loss and gradient, as PyTorch.
// That change, A/B in one process (benchmarks/ab_native_builds.py, 1024x50304, 2 threads,
// best of 7): forward 0.99-1.01x, backward 0.99-1.04x the old time (within noise).
// exp is a vectorised Cephes-style range reduction + polynomial (cross_entropy_impl.h).
//
// Cost per logit (float32): forward ~20 FLOPs (one exp), 4 bytes read; backward ~20 FLOPs,
// 8 bytes (read logits, write dlogits). NumPy's reference makes ~6 full passes.
//
// Measured 2026-11-22, AMD EPYC 2 vCPUs (AVX2, KVM, shared: load average ~3.5), float32,
// forward+backward, best of interleaved runs (benchmarks/bench_cross_entropy.py), 2 threads:
//   4096x256 1.4 ms (2.5x torch.nn.functional.cross_entropy 2.13, 3.9x NumPy);
//   1024x50304 82 ms (6.8x torch, 4.6x NumPy); 4096x50304 488 ms (5.8x torch, 6.5x NumPy).
// Compute-bound (the exp) in cache: ~0.65 ns/logit forward on one core; the (N, C) output
// of the backward is a fresh array whose first-touch zeroing the kernel pays.
#include "kernels/cross_entropy.h"

#include "cpu_features.h"

#define PYZEN_SIMD_BYTES 16
#define PYZEN_CE_NS cross_entropy_portable
#include "kernels/cross_entropy_impl.h"

namespace pyzen {

#ifdef PYZEN_X86_KERNELS
#define PYZEN_DECLARE_CE(ns)                                       \
  namespace ns {                                                   \
  int64_t forward(const CrossEntropyForwardArgs<float>& a);        \
  int64_t forward(const CrossEntropyForwardArgs<double>& a);       \
  int64_t backward(const CrossEntropyBackwardArgs<float>& a);      \
  int64_t backward(const CrossEntropyBackwardArgs<double>& a);     \
  }
PYZEN_DECLARE_CE(cross_entropy_avx2)
PYZEN_DECLARE_CE(cross_entropy_avx512)
#undef PYZEN_DECLARE_CE
#endif

namespace {

template <typename Args>
int64_t forward_on_isa(const Args& a) {
#ifdef PYZEN_X86_KERNELS
  switch (active_isa()) {
    case Isa::avx512: return cross_entropy_avx512::forward(a);
    case Isa::avx2: return cross_entropy_avx2::forward(a);
    case Isa::scalar: break;
  }
#endif
  return cross_entropy_portable::forward(a);
}

template <typename Args>
int64_t backward_on_isa(const Args& a) {
#ifdef PYZEN_X86_KERNELS
  switch (active_isa()) {
    case Isa::avx512: return cross_entropy_avx512::backward(a);
    case Isa::avx2: return cross_entropy_avx2::backward(a);
    case Isa::scalar: break;
  }
#endif
  return cross_entropy_portable::backward(a);
}

}  // namespace

int64_t cross_entropy_forward(const CrossEntropyForwardArgs<float>& a) { return forward_on_isa(a); }
int64_t cross_entropy_forward(const CrossEntropyForwardArgs<double>& a) { return forward_on_isa(a); }
int64_t cross_entropy_backward(const CrossEntropyBackwardArgs<float>& a) { return backward_on_isa(a); }
int64_t cross_entropy_backward(const CrossEntropyBackwardArgs<double>& a) { return backward_on_isa(a); }

}  // namespace pyzen
