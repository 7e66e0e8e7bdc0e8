// Launches of the flash attention kernels; the algorithm is in attention_kernels.cuh.
#include "attention_kernels.cuh"
#include "common.cuh"
#include "kernels.h"
#include "training.h"

namespace pyzen::cuda {

using namespace attention_kernels;

namespace {

constexpr std::int64_t kMaxGridY = 65535;

const float* cf(const Array& a) { return static_cast<const float*>(a.data()); }
float* f(const Array& a) { return static_cast<float*>(a.data()); }

unsigned tiles(std::int64_t rows) { return static_cast<unsigned>((rows + kRows - 1) / kRows); }

template <int D>
void forward(const Array& out, const Array& lse, const Array& q, const Array& k, const Array& v, const Dims& s) {
  const std::int64_t bh = q.shape[0];
  // (batch, head) pairs on grid y, in launches of at most 65535.
  for (std::int64_t b0 = 0; b0 < bh; b0 += kMaxGridY) {
    const unsigned n = static_cast<unsigned>(bh - b0 < kMaxGridY ? bh - b0 : kMaxGridY);
    attention_forward_kernel<D><<<dim3(tiles(s.tq), n), kBlock>>>(s, cf(q) + b0 * s.tq * D, cf(k) + b0 * s.tk * D,
                                                                   cf(v) + b0 * s.tk * D, f(out) + b0 * s.tq * D,
                                                                   f(lse) + b0 * s.tq);
    check_launch("attention", "attention_forward_kernel");
  }
}

template <int D>
void backward(const Array& dq, const Array& dk, const Array& dv, const Array& g, const Array& q, const Array& k,
              const Array& v, const Array& out, const Array& lse, const Dims& s) {
  const std::int64_t bh = q.shape[0];
  const Array delta = empty({bh, s.tq}, DType::f32, "attention_backward");
  attention_delta_kernel<<<grid_for(bh * s.tq), kThreads>>>(bh * s.tq, D, cf(g), cf(out), f(delta));
  check_launch("attention_backward", "attention_delta_kernel");
  for (std::int64_t b0 = 0; b0 < bh; b0 += kMaxGridY) {
    const unsigned n = static_cast<unsigned>(bh - b0 < kMaxGridY ? bh - b0 : kMaxGridY);
    const std::int64_t oq = b0 * s.tq * D, ok = b0 * s.tk * D, orow = b0 * s.tq;
    if (s.tq > 0) {
      attention_dq_kernel<D><<<dim3(tiles(s.tq), n), kBlock>>>(s, cf(g) + oq, cf(q) + oq, cf(k) + ok, cf(v) + ok,
                                                                cf(lse) + orow, cf(delta) + orow, f(dq) + oq);
      check_launch("attention_backward", "attention_dq_kernel");
    }
    if (s.tk > 0) {
      attention_dkv_kernel<D><<<dim3(tiles(s.tk), n), kBlock>>>(s, cf(g) + oq, cf(q) + oq, cf(k) + ok, cf(v) + ok,
                                                                 cf(lse) + orow, cf(delta) + orow, f(dk) + ok, f(dv) + ok);
      check_launch("attention_backward", "attention_dkv_kernel");
    }
  }
}

}  // namespace

void attention_forward(const Array& out, const Array& lse, const Array& q, const Array& k, const Array& v, bool causal,
                       double scale) {
  const Dims s{q.shape[1], k.shape[1], static_cast<float>(scale), causal};
  if (q.shape[0] == 0 || s.tq == 0) return;
  if (q.shape[2] == 64) forward<64>(out, lse, q, k, v, s);
  else forward<128>(out, lse, q, k, v, s);
}

void attention_backward(const Array& dq, const Array& dk, const Array& dv, const Array& g, const Array& q, const Array& k,
                        const Array& v, const Array& out, const Array& lse, bool causal, double scale) {
  const Dims s{q.shape[1], k.shape[1], static_cast<float>(scale), causal};
  if (q.shape[0] == 0) return;
  if (s.tq == 0) {  // no query sees the keys: their gradients are zero
    fill(dk, 0.0, 0);
    fill(dv, 0.0, 0);
    return;
  }
  if (q.shape[2] == 64) backward<64>(dq, dk, dv, g, q, k, v, out, lse, s);
  else backward<128>(dq, dk, dv, g, q, k, v, out, lse, s);
}

}  // namespace pyzen::cuda
