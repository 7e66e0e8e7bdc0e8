"""Benchmark pyzen's CUDA training kernels on one GPU: layer norm (forward + backward) and
the multi-tensor AdamW step as a fraction of the device's measured copy bandwidth, and
attention forward + backward against torch scaled_dot_product_attention.

    python benchmarks/bench_cuda_training.py                 # all three
    python benchmarks/bench_cuda_training.py --only attention --seq 4096

Bandwidth: the best time of a device-to-device copy of 1 GiB by pyzen's copy kernel
(read + write bytes / time). Each kernel is validated first on a small case against
NumPy float64, then timed by the wall clock around synchronised batches (best of 5).
Attention: B=1, H=8, T=--seq, D=64 and 128, causal, no mask, float32 and bfloat16: pyzen's
flash kernels (cuda/attention_kernels.cuh, and attention_bf16_kernels.cuh on float32
tensors whose values it rounds: the conversion passes are in its time) against torch SDPA
on float32 and on bfloat16 tensors; each validated first against NumPy float64 at T=200.
Skips (exit 0 with a message) without a CUDA device; the attention comparison skips
without PyTorch.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import pyzen
from pyzen.backend import cuda as be


def best_time(fn, iters: int = 10, rounds: int = 5) -> float:
    fn()
    pyzen.cuda.synchronize()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        pyzen.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / iters)
    return best


def device(a: np.ndarray):
    return pyzen.tensor(a, device="cuda")._data


def copy_bandwidth() -> float:
    n = 1 << 28  # 1 GiB of float32
    src, dst = be.empty((n,), np.float32), be.empty((n,), np.float32)
    from pyzen.backend import cuda_array

    return 8 * n / best_time(lambda: cuda_array._cuda.copy(dst._a, src._a), iters=5)


def bench_layer_norm(bw: float) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 768))
    out, mean, rstd = be.layer_norm_forward(device(x), None, None, 1e-5)
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    assert np.allclose(be.to_numpy(out), want, atol=1e-10), "layer norm forward is wrong"
    for rows, c in ((16384, 768), (8192, 4096)):
        x, g, w = (device(rng.standard_normal(s).astype(np.float32)) for s in ((rows, c), (rows, c), (c,)))
        b = device(np.zeros(c, np.float32))
        fwd = best_time(lambda: be.layer_norm_forward(x, w, b, 1e-5))
        _, mean, rstd = be.layer_norm_forward(x, w, b, 1e-5)
        bwd = best_time(lambda: be.layer_norm_backward(g, x, w, mean, rstd, True))
        nbytes = 4 * rows * c
        print(f"layer norm {rows}x{c} f32: forward {fwd * 1e6:8.1f} us  {2 * nbytes / fwd / bw:5.1%} of bandwidth; "
              f"backward {bwd * 1e6:8.1f} us  {3 * nbytes / bwd / bw:5.1%}")


def bench_adamw(bw: float) -> None:
    rng = np.random.default_rng(0)
    sizes = [768 * 768 * 4] * 12 + [768 * 3072] * 24 + [768] * 100  # a GPT-2-small-like mix, ~85M
    params = [device(rng.standard_normal(n).astype(np.float32)) for n in sizes]
    grads = [device(rng.standard_normal(n).astype(np.float32)) for n in sizes]
    ms = [device(np.zeros(n, np.float32)) for n in sizes]
    vs = [device(np.zeros(n, np.float32)) for n in sizes]
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True, maximize=False)
    p0 = be.to_numpy(params[-1]).astype(np.float64)
    be.adamw_step(params, grads, ms, vs, None, [1] * len(sizes), **kw)
    g0 = be.to_numpy(grads[-1]).astype(np.float64)
    want = p0 * (1 - 1e-5) - 1e-3 * g0 / (np.abs(g0) + 1e-8)
    assert np.allclose(be.to_numpy(params[-1]), want, atol=1e-6), "AdamW is wrong"
    t = best_time(lambda: be.adamw_step(params, grads, ms, vs, None, [2] * len(sizes), **kw))
    n = sum(sizes)
    print(f"adamw {n / 1e6:.1f}M f32 params in {len(sizes)} tensors: {t * 1e3:7.2f} ms  {28 * n / t / bw:5.1%} of bandwidth")


def bench_attention(seq: int) -> None:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("attention: skipped (no PyTorch)")
        return
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 200, 64)).astype(np.float32) for _ in range(3))
    s = np.einsum("...id,...jd->...ij", q.astype(np.float64), k) * 0.125
    s = np.where(np.arange(200) > np.arange(200)[:, None], -np.inf, s)
    p = np.exp(s - s.max(-1, keepdims=True))
    want = p / p.sum(-1, keepdims=True) @ v
    for bf16, tol in ((False, 1e-4), (True, 3e-2)):
        out, _ = be.attention_forward(device(q), device(k), device(v), None, True, 0.125, bf16)
        assert np.allclose(be.to_numpy(out), want, atol=tol), f"attention (bf16={bf16}) is wrong"
    for d in (64, 128):
        q, k, v, g = (rng.standard_normal((1, 8, seq, d)).astype(np.float32) for _ in range(4))
        dq_, dk_, dv_, dg_ = (device(a) for a in (q, k, v, g))
        scale = 1 / np.sqrt(d)
        flops = 0.5 * 3.5 * 4 * seq * seq * d * 8  # 8 heads: forward 4 T^2 D, backward 2.5x that; causal halves
        for name, tdtype, bf16 in (("f32", torch.float32, False), ("bf16", torch.bfloat16, True)):

            def ours():
                out, lse = be.attention_forward(dq_, dk_, dv_, None, True, scale, bf16)
                be.attention_backward(dg_, dq_, dk_, dv_, out, lse, None, True, scale, bf16)

            tq, tk, tv = (torch.from_numpy(a).cuda().to(tdtype).requires_grad_() for a in (q, k, v))
            tg = torch.from_numpy(g).cuda().to(tdtype)

            def theirs():
                F.scaled_dot_product_attention(tq, tk, tv, is_causal=True).backward(tg)

            t_ours, t_torch = best_time(ours, iters=3), best_time(theirs, iters=3)
            torch.cuda.synchronize()
            print(f"attention T={seq} D={d} causal {name} fwd+bwd: pyzen {t_ours * 1e3:8.2f} ms "
                  f"({flops / t_ours / 1e12:5.1f} TFLOP/s), torch sdpa {t_torch * 1e3:8.2f} ms "
                  f"({flops / t_torch / 1e12:5.1f} TFLOP/s), ratio torch/pyzen {t_torch / t_ours:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["layer_norm", "adamw", "attention"])
    ap.add_argument("--seq", type=int, default=4096)
    args = ap.parse_args()
    if not pyzen.cuda.is_available():
        print(f"skipped: {pyzen.cuda.unavailable_reason()}")
        sys.exit(0)
    print(f"device: {pyzen.cuda.get_device_name(0)}")
    bw = copy_bandwidth()
    print(f"measured copy bandwidth: {bw / 1e9:.0f} GB/s")
    if args.only in (None, "layer_norm"):
        bench_layer_norm(bw)
    if args.only in (None, "adamw"):
        bench_adamw(bw)
    if args.only in (None, "attention"):
        bench_attention(args.seq)


if __name__ == "__main__":
    main()
