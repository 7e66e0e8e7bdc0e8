"""The benchmarked kernels: for each, inputs for a shape, pyzen's call, a NumPy reference
(also used to validate pyzen's result), PyTorch's call when available, and the work done
(FLOPs for compute-bound kernels, bytes for memory-bound ones)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..backend import cpu


@dataclass
class Case:
    kernel: str
    shape: tuple
    work: float  # FLOPs or bytes per call
    unit: str  # "GFLOP/s" or "GB/s"
    footprint: float  # bytes of the arrays the call reads and writes: which cache level it lives in
    pyzen: Callable[[], Any]
    numpy: Callable[[], Any]
    torch: Callable[[], Any] | None
    check: Callable[[], float]  # max relative error of pyzen against the float64 reference


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if b.size else 0.0


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def matmul(m: int, k: int, n: int) -> Case:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    torch = _torch()
    ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
    return Case("matmul", (m, k, n), 2.0 * m * n * k, "GFLOP/s", 4.0 * (m * k + k * n + m * n), lambda: cpu.matmul(a, b), lambda: a @ b,
                (lambda: ta @ tb) if torch else None, lambda: _rel(cpu.matmul(a, b), a.astype(np.float64) @ b))


def _attention_ref(q, k, v, causal):
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        t = s.shape[-1]
        s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def attention(b: int, h: int, t: int, d: int, causal: bool = True, backward: bool = True) -> Case:
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((b, h, t, d), np.float32) for _ in range(3))
    g = rng.standard_normal((b, h, t, d), np.float32)
    scale = 1 / math.sqrt(d)
    flops = 4.0 * b * h * t * t * d * (0.5 if causal else 1.0) * (3.5 if backward else 1.0)

    def run_pyzen():
        out, lse = cpu.attention_forward(q, k, v, None, causal, scale)
        return cpu.attention_backward(g, q, k, v, out, lse, None, causal, scale) if backward else out

    def run_numpy():
        return _attention_ref(q, k, v, causal)

    torch = _torch()
    run_torch = None
    if torch:
        tq, tk, tv = (torch.from_numpy(x).requires_grad_(backward) for x in (q, k, v))
        tg = torch.from_numpy(g)

        def run_torch():
            out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
            if backward:
                out.backward(tg)
            return out

    def check():
        out, _ = cpu.attention_forward(q, k, v, None, causal, scale)
        return _rel(out, _attention_ref(*(x.astype(np.float64) for x in (q, k, v)), causal))

    name = "attention fwd+bwd" if backward else "attention fwd"
    footprint = 4.0 * b * h * t * d * (8 if backward else 4)  # q, k, v, out (+ g, dq, dk, dv)
    return Case(name, (b, h, t, d), flops, "GFLOP/s", footprint, run_pyzen, run_numpy, run_torch, check)


def layer_norm(rows: int, c: int) -> Case:
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((rows, c), np.float32), rng.standard_normal((rows, c), np.float32)
    w, bias = rng.standard_normal(c, np.float32), rng.standard_normal(c, np.float32)

    def run_pyzen():
        out, mean, rstd = cpu.layer_norm_forward(x, w, bias, 1e-5)
        return cpu.layer_norm_backward(g, x, w, mean, rstd, True)

    def run_numpy():
        mean = x.mean(-1, keepdims=True)
        xc = x - mean
        rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + 1e-5)
        xhat = xc * rstd
        gw = g * w
        dx = rstd * (gw - gw.mean(-1, keepdims=True) - xhat * (gw * xhat).mean(-1, keepdims=True))
        return dx, (g * xhat).sum(0), g.sum(0)

    torch = _torch()
    run_torch = None
    if torch:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, bias))
        tg = torch.from_numpy(g)

        def run_torch():
            torch.nn.functional.layer_norm(tx, (c,), tw, tb, 1e-5).backward(tg)

    def check():
        x64 = x.astype(np.float64)
        out, _, _ = cpu.layer_norm_forward(x, w, bias, 1e-5)
        ref = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5) * w + bias
        return _rel(out, ref)

    # forward reads x, writes out; backward reads g and x, writes dx (row statistics are tiny)
    return Case("layer_norm fwd+bwd", (rows, c), 5.0 * rows * c * 4, "GB/s", 4.0 * rows * c * 4, run_pyzen, run_numpy,
                run_torch, check)


def adamw(n: int) -> Case:
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(n, np.float32), rng.standard_normal(n, np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True, maximize=False)

    def run_pyzen():
        cpu.adamw_step([p], [g], [m], [v], None, [1], **kw)

    def run_numpy():
        p2, m2, v2 = p.copy(), m.copy(), v.copy()
        p2 *= 1 - 1e-3 * 0.01
        m2 += 0.1 * (g - m2)
        v2 *= 0.999
        v2 += 0.001 * g * g
        p2 -= (1e-3 / 0.1) * m2 / (np.sqrt(v2) / math.sqrt(0.001) + 1e-8)

    torch = _torch()
    run_torch = None
    if torch:
        tp = torch.from_numpy(p.copy()).requires_grad_()
        tp.grad = torch.from_numpy(g)
        opt = torch.optim.AdamW([tp], lr=1e-3, weight_decay=0.01, fused=True)
        run_torch = opt.step

    def check():
        p0, m0, v0 = p.copy(), m.copy(), v.copy()
        cpu.adamw_step([p0], [g], [m0], [v0], None, [1], **kw)
        g64 = g.astype(np.float64)
        ref = p.astype(np.float64) * (1 - 1e-5) - 1e-3 * (0.1 * g64) / 0.1 / (np.abs(g64) * math.sqrt(0.001) / math.sqrt(0.001) + 1e-8)
        return _rel(p0 - p, ref - p)

    # reads p, g, m, v and writes p, m, v: 7 float32 per parameter
    return Case("adamw step", (n,), 28.0 * n, "GB/s", 16.0 * n, run_pyzen, run_numpy, run_torch, check)


def cross_entropy(n: int, c: int) -> Case:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n, c), np.float32)
    target = rng.integers(0, c, n)
    ones = np.ones(n, np.float32)

    def run_pyzen():
        losses, lse = cpu.cross_entropy_forward(logits, target, -100, 0.0)
        return cpu.cross_entropy_backward(ones, logits, target, lse, -100, 0.0)

    def run_numpy():
        m = logits.max(-1, keepdims=True)
        e = np.exp(logits - m)
        p = e / e.sum(-1, keepdims=True)
        p[np.arange(n), target] -= 1
        return p

    torch = _torch()
    run_torch = None
    if torch:
        tl, tt = torch.from_numpy(logits).requires_grad_(), torch.from_numpy(target)

        def run_torch():
            torch.nn.functional.cross_entropy(tl, tt, reduction="sum").backward()

    def check():
        losses, _ = cpu.cross_entropy_forward(logits, target, -100, 0.0)
        x = logits.astype(np.float64)
        m = x.max(-1)
        ref = np.log(np.exp(x - m[:, None]).sum(-1)) + m - x[np.arange(n), target]
        return _rel(losses, ref)

    # forward reads the logits; backward reads them again and writes dlogits
    return Case("cross_entropy fwd+bwd", (n, c), 3.0 * n * c * 4, "GB/s", 2.0 * n * c * 4, run_pyzen, run_numpy,
                run_torch, check)


def gelu(n: int) -> Case:
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal(n, np.float32), rng.standard_normal(n, np.float32)

    def run_pyzen():
        cpu.gelu(x, "tanh")
        return cpu.gelu_backward(g, x, "tanh")

    def run_numpy():
        t = np.tanh(0.7978845608 * (x + 0.044715 * x**3))
        y = 0.5 * x * (1 + t)
        return y, g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608 * (1 + 3 * 0.044715 * x * x))

    torch = _torch()
    run_torch = None
    if torch:
        tx, tg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(g)

        def run_torch():
            torch.nn.functional.gelu(tx, approximate="tanh").backward(tg)

    def check():
        x64 = x.astype(np.float64)
        return _rel(cpu.gelu(x, "tanh"), 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3))))

    return Case("gelu fwd+bwd", (n,), 5.0 * n * 4, "GB/s", 4.0 * n * 4, run_pyzen, run_numpy, run_torch, check)


KERNELS: dict[str, tuple[Callable[..., Case], list[tuple]]] = {
    "matmul": (matmul, [(256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048), (8192, 768, 768), (8192, 768, 3072), (768, 128, 384)]),
    "attention": (attention, [(1, 12, 2048, 64), (4, 8, 512, 64)]),
    "layer_norm": (layer_norm, [(8192, 768), (65536, 1024)]),
    "adamw": (adamw, [(16 << 20,), (1 << 20,)]),
    "cross_entropy": (cross_entropy, [(4096, 256), (2048, 50304)]),
    "gelu": (gelu, [(4 << 20,)]),
}
