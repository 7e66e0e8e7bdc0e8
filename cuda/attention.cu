// Launches of the flash attention kernels; the algorithms are in attention_kernels.cuh
// (float32) and attention_bf16_kernels.cuh (bfloat16 inputs, tensor cores).
#include "attention_bf16_kernels.cuh"
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

unsigned tiles(std::int64_t rows, int per_block) { return static_cast<unsigned>((rows + per_block - 1) / per_block); }

// Calls launch(b0, n) for the (batch, head) pairs [b0, b0 + n), which the kernels take on
// grid y: chunks of at most 65535.
template <typename Launch>
void over_heads(std::int64_t bh, Launch launch) {
  for (std::int64_t b0 = 0; b0 < bh; b0 += kMaxGridY) launch(b0, static_cast<unsigned>(bh - b0 < kMaxGridY ? bh - b0 : kMaxGridY));
}

// a (float32, contiguous) rounded to bfloat16 in a new buffer of the same shape.
Array to_bf16(const Array& a, const char* op) {
  Array b = empty(a.shape, DType::bf16, op);
  if (const std::int64_t n = a.numel()) {
    attention_bf16_kernels::to_bf16_kernel<<<grid_for(n), kThreads>>>(n, cf(a), static_cast<std::uint16_t*>(b.data()));
    check_launch(op, "to_bf16_kernel");
  }
  return b;
}

const std::uint16_t* cb(const Array& a) { return static_cast<const std::uint16_t*>(a.data()); }

template <int D>
void forward(const Array& out, const Array& lse, const Array& q, const Array& k, const Array& v, const Dims& s) {
  over_heads(q.shape[0], [&](std::int64_t b0, unsigned n) {
    attention_forward_kernel<D><<<dim3(tiles(s.tq, kRows), n), kBlock>>>(s, cf(q) + b0 * s.tq * D, cf(k) + b0 * s.tk * D,
                                                                         cf(v) + b0 * s.tk * D, f(out) + b0 * s.tq * D,
                                                                         f(lse) + b0 * s.tq);
    check_launch("attention", "attention_forward_kernel");
  });
}

template <int D>
void forward_bf16(const Array& out, const Array& lse, const Array& q, const Array& k, const Array& v, const Dims& s) {
  namespace bk = attention_bf16_kernels;
  const Array qb = to_bf16(q, "attention"), kb = to_bf16(k, "attention"), vb = to_bf16(v, "attention");
  over_heads(q.shape[0], [&](std::int64_t b0, unsigned n) {
    bk::attention_bf16_forward_kernel<D><<<dim3(tiles(s.tq, bk::kRows), n), bk::kBlock>>>(
        s, cb(qb) + b0 * s.tq * D, cb(kb) + b0 * s.tk * D, cb(vb) + b0 * s.tk * D, f(out) + b0 * s.tq * D, f(lse) + b0 * s.tq);
    check_launch("attention", "attention_bf16_forward_kernel");
  });
}

// delta[i] = g[i] . out[i] (float32 sum; g float32 or bfloat16), the row term of both
// backward passes.
template <typename G>
Array attention_delta(const Array& g, const Array& out, std::int64_t d) {
  const std::int64_t rows = g.shape[0] * g.shape[1];
  const Array delta = empty({g.shape[0], g.shape[1]}, DType::f32, "attention_backward");
  if (rows) {
    attention_delta_kernel<<<grid_for(rows), kThreads>>>(rows, static_cast<int>(d), static_cast<const G*>(g.data()),
                                                         cf(out), f(delta));
    check_launch("attention_backward", "attention_delta_kernel");
  }
  return delta;
}

template <int D>
void backward(const Array& dq, const Array& dk, const Array& dv, const Array& g, const Array& q, const Array& k,
              const Array& v, const Array& out, const Array& lse, const Dims& s) {
  const Array delta = attention_delta<float>(g, out, D);
  over_heads(q.shape[0], [&](std::int64_t b0, unsigned n) {
    const std::int64_t oq = b0 * s.tq * D, ok = b0 * s.tk * D, orow = b0 * s.tq;
    attention_dq_kernel<D><<<dim3(tiles(s.tq, kRows), n), kBlock>>>(s, cf(g) + oq, cf(q) + oq, cf(k) + ok, cf(v) + ok,
                                                                     cf(lse) + orow, cf(delta) + orow, f(dq) + oq);
    check_launch("attention_backward", "attention_dq_kernel");
    if (s.tk > 0) {
      attention_dkv_kernel<D><<<dim3(tiles(s.tk, kRows), n), kBlock>>>(s, cf(g) + oq, cf(q) + oq, cf(k) + ok, cf(v) + ok,
                                                                        cf(lse) + orow, cf(delta) + orow, f(dk) + ok,
                                                                        f(dv) + ok);
      check_launch("attention_backward", "attention_dkv_kernel");
    }
  });
}

template <int D>
void backward_bf16(const Array& dq, const Array& dk, const Array& dv, const Array& g, const Array& q, const Array& k,
                   const Array& v, const Array& out, const Array& lse, const Dims& s) {
  namespace bk = attention_bf16_kernels;
  const char* n_ = "attention_backward";
  const Array gb = to_bf16(g, n_), qb = to_bf16(q, n_), kb = to_bf16(k, n_), vb = to_bf16(v, n_);
  const Array delta = attention_delta<std::uint16_t>(gb, out, D);
  over_heads(q.shape[0], [&](std::int64_t b0, unsigned n) {
    const std::int64_t oq = b0 * s.tq * D, ok = b0 * s.tk * D, orow = b0 * s.tq;
    bk::attention_bf16_dq_kernel<D><<<dim3(tiles(s.tq, bk::kRows), n), bk::kBlock>>>(
        s, cb(gb) + oq, cb(qb) + oq, cb(kb) + ok, cb(vb) + ok, cf(lse) + orow, cf(delta) + orow, f(dq) + oq);
    check_launch(n_, "attention_bf16_dq_kernel");
    if (s.tk > 0) {
      bk::attention_bf16_dkv_kernel<D><<<dim3(tiles(s.tk, bk::kRows), n), bk::kBlock>>>(
          s, cb(gb) + oq, cb(qb) + oq, cb(kb) + ok, cb(vb) + ok, cf(lse) + orow, cf(delta) + orow, f(dk) + ok, f(dv) + ok);
      check_launch(n_, "attention_bf16_dkv_kernel");
    }
  });
}

}  // namespace

void attention_forward(const Array& out, const Array& lse, const Array& q, const Array& k, const Array& v, bool causal,
                       double scale, bool bf16) {
  const Dims s{q.shape[1], k.shape[1], static_cast<float>(scale), causal};
  if (q.shape[0] == 0 || s.tq == 0) return;
  switch (q.shape[2]) {
    case 32: return bf16 ? forward_bf16<32>(out, lse, q, k, v, s) : forward<32>(out, lse, q, k, v, s);
    case 64: return bf16 ? forward_bf16<64>(out, lse, q, k, v, s) : forward<64>(out, lse, q, k, v, s);
    default: return bf16 ? forward_bf16<128>(out, lse, q, k, v, s) : forward<128>(out, lse, q, k, v, s);
  }
}

void attention_backward(const Array& dq, const Array& dk, const Array& dv, const Array& g, const Array& q, const Array& k,
                        const Array& v, const Array& out, const Array& lse, bool causal, double scale, bool bf16) {
  const Dims s{q.shape[1], k.shape[1], static_cast<float>(scale), causal};
  if (q.shape[0] == 0) return;
  if (s.tq == 0) {  // no query sees the keys: their gradients are zero
    fill(dk, 0.0, 0);
    fill(dv, 0.0, 0);
    return;
  }
  switch (q.shape[2]) {
    case 32:
      return bf16 ? backward_bf16<32>(dq, dk, dv, g, q, k, v, out, lse, s) : backward<32>(dq, dk, dv, g, q, k, v, out, lse, s);
    case 64:
      return bf16 ? backward_bf16<64>(dq, dk, dv, g, q, k, v, out, lse, s) : backward<64>(dq, dk, dv, g, q, k, v, out, lse, s);
    default:
      return bf16 ? backward_bf16<128>(dq, dk, dv, g, q, k, v, out, lse, s) : backward<128>(dq, dk, dv, g, q, k, v, out, lse, s);
  }
}

}  // namespace pyzen::cuda
