"""A NumPy stand-in for the kernel entry points of `pyzen._cuda`, for tests only.

It has the module's Python-visible contract (the Array type with views into a flat
buffer, the same function names, argument order and validation of shapes and dtypes),
with each kernel written as the plainest NumPy expression. Swapped in for `_cuda`, it
lets the CUDA backend's Python layer (pyzen/backend/cuda*.py: views, broadcasting,
promotion, indexing, reductions, autograd through device tensors) run on any machine,
so that the GPU session finds only kernel bugs. It says nothing about the kernels.
"""
from __future__ import annotations

import math
import sys

import numpy as np
from numpy.lib.stride_tricks import as_strided

from bf16_reference import round_bf16

_erf = np.vectorize(math.erf, otypes=[np.float64])
_DTYPES = ("float32", "float64", "int64", "bool")
_live: dict = {}  # buffer id -> bytes, for memory_allocated


class _Buffer:
    def __init__(self, n: int, dtype: str) -> None:
        self.data = np.zeros(max(n, 0), dtype)
        _live[id(self)] = self.data.nbytes

    def __del__(self) -> None:
        _live.pop(id(self), None)


class Array:
    def __init__(self, buf: _Buffer, shape, strides, offset: int) -> None:
        self._buf, self.shape, self.strides, self.offset = buf, tuple(shape), tuple(strides), offset
        self.dtype = buf.data.dtype.name

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    buffer_id = property(lambda self: id(self._buf))
    buffer_elements = property(lambda self: self._buf.data.size)

    @property
    def np(self) -> np.ndarray:
        d = self._buf.data
        if self.size == 0:
            return np.zeros(self.shape, d.dtype)
        return as_strided(d[self.offset :], self.shape, [s * d.itemsize for s in self.strides], writeable=True)

    def is_contiguous(self) -> bool:
        expected = 1
        for s, st in zip(reversed(self.shape), reversed(self.strides)):
            if s != 1 and st != expected and self.size:
                return False
            expected *= s
        return True

    def view(self, shape, strides, offset) -> "Array":
        if len(shape) != len(strides) or any(s < 0 for s in shape):
            raise ValueError("view: bad shape or strides")
        if math.prod(shape):
            reach = [(s - 1) * st for s, st in zip(shape, strides)]
            lo = offset + sum(r for r in reach if r < 0)
            hi = offset + sum(r for r in reach if r > 0)
            if lo < 0 or hi >= self._buf.data.size:
                raise ValueError(f"view: view reaches elements {lo}..{hi} of a buffer holding {self._buf.data.size}")
        return Array(self._buf, shape, strides, offset)


def _contiguous(shape):
    strides, n = [], 1
    for s in reversed(shape):
        strides.insert(0, n)
        n *= s
    return strides


def empty(shape, dtype: str) -> Array:
    if dtype not in _DTYPES:
        raise TypeError(f"empty: unsupported dtype '{dtype}'")
    return Array(_Buffer(math.prod(shape), dtype), shape, _contiguous(shape), 0)


def from_numpy(a) -> Array:
    a = np.asarray(a, order="C")
    out = empty(a.shape, a.dtype.name)
    out.np[...] = a
    return out


def to_numpy(a: Array) -> np.ndarray:
    return np.array(a.np, copy=True)


def _same(a: Array, shape, what: str) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{what} has shape {a.shape}, expected {tuple(shape)}")


def _contiguous_arg(a: Array, what: str) -> None:
    if not a.is_contiguous():
        raise ValueError(f"{what} must be contiguous")


def _writable(out: Array, what: str) -> None:
    if out.size and any(s > 1 and st == 0 for s, st in zip(out.shape, out.strides)):
        raise ValueError(f"{what}: the output has a broadcast (stride 0) dim")


def fill(out: Array, value) -> None:
    _writable(out, "fill")
    out.np[...] = value


def iota(out: Array, start: float, step: float) -> None:
    _contiguous_arg(out, "iota: out")
    out.np[...] = (start + step * np.arange(out.size, dtype=np.float64)).reshape(out.shape).astype(out.dtype)


def copy(out: Array, src: Array) -> None:
    _same(src, out.shape, "copy: src")
    _writable(out, "copy")
    if src.buffer_id == out.buffer_id and src.size > 1 and (src.offset, src.strides) != (out.offset, out.strides):
        raise ValueError("copy: src overlaps out in another layout (the kernel would race)")
    out.np[...] = src.np


_UNARY = {
    "negative": np.negative, "absolute": np.abs, "sign": np.sign, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "sigmoid": lambda x: 0.5 * (1 + np.tanh(0.5 * x)),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "round_bf16": lambda x: round_bf16(x),
    "logical_not": np.logical_not, "isfinite": np.isfinite,
}


def unary(op: str, out: Array, x: Array) -> None:
    _same(x, out.shape, f"{op}: x")
    want = "bool" if op in ("logical_not", "isfinite") else x.dtype
    if out.dtype != want:
        raise TypeError(f"{op}: out must be {want}")
    if op not in ("negative", "absolute", "sign", "logical_not", "isfinite") and x.dtype not in ("float32", "float64"):
        raise TypeError(f"{op}: x must be float")
    if op == "round_bf16" and x.dtype != "float32":
        raise TypeError(f"{op}: x must be float32")
    with np.errstate(all="ignore"):
        out.np[...] = _UNARY[op](x.np)


def _gelu_backward(g, x):
    return g * (0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))


def _gelu_tanh_backward(g, x):
    c = math.sqrt(2 / math.pi)
    t = np.tanh(c * (x + 0.044715 * x**3))
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))


_BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "true_divide": np.true_divide,
    "power": np.power, "maximum": np.maximum, "minimum": np.minimum, "gelu_backward": _gelu_backward,
    "gelu_tanh_backward": _gelu_tanh_backward, "equal": np.equal, "not_equal": np.not_equal, "less": np.less,
    "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}
_COMPARE = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor")


def binary(op: str, out: Array, a: Array, b: Array) -> None:
    _same(a, out.shape, f"{op}: a")
    _same(b, out.shape, f"{op}: b")
    if a.dtype != b.dtype or out.dtype != ("bool" if op in _COMPARE else a.dtype):
        raise TypeError(f"{op}: dtypes {a.dtype}, {b.dtype} -> {out.dtype}")
    with np.errstate(all="ignore"):
        r = _BINARY[op](a.np, b.np)
    out.np[...] = r.astype(out.dtype) if a.dtype == "bool" and op not in _COMPARE else r


def where(out: Array, cond: Array, a: Array, b: Array) -> None:
    for v, n in ((cond, "cond"), (a, "a"), (b, "b")):
        _same(v, out.shape, f"where: {n}")
    if cond.dtype != "bool" or a.dtype != out.dtype or b.dtype != out.dtype:
        raise TypeError("where: dtypes")
    out.np[...] = np.where(cond.np, a.np, b.np)


def reduce(op: str, out: Array, x: Array, nreduce: int) -> None:
    kept = x.shape[: x.ndim - nreduce]
    _same(out, kept, f"{op}: out")
    _contiguous_arg(out, f"{op}: out")
    v = np.reshape(x.np, kept + (math.prod(x.shape[len(kept):]),))
    with np.errstate(all="ignore"):
        r = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "argmax": np.argmax, "argmin": np.argmin}[op](v, axis=-1)
    if out.dtype != ("int64" if op.startswith("arg") else x.dtype):
        raise TypeError(f"{op}: out dtype {out.dtype}")
    out.np[...] = r


def cumulative(op: str, out: Array, x: Array) -> None:
    _same(out, x.shape, f"{op}: out")
    out.np[...] = (np.cumsum if op == "cumsum" else np.cumprod)(x.np, axis=-1)


def softmax(out: Array, x: Array, log: bool) -> None:
    if not x.is_contiguous():
        raise ValueError("softmax: x must be contiguous")
    v = x.np
    m = np.max(v, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(all="ignore"):
        s = np.sum(np.exp(v - m), axis=-1, keepdims=True)
        out.np[...] = v - m - np.log(s) if log else np.exp(v - m) / s


def softmax_backward(dx: Array, g: Array, y: Array, log: bool) -> None:
    for a in (dx, g, y):
        _contiguous_arg(a, "softmax_backward: operand")
    gv, yv = g.np, y.np
    if log:
        dx.np[...] = gv - np.exp(yv) * gv.sum(-1, keepdims=True)
    else:
        dx.np[...] = yv * (gv - (gv * yv).sum(-1, keepdims=True))


def take(out: Array, x: Array, index: Array, axis: int) -> None:
    if index.dtype != "int64" or index.ndim != 1:
        raise TypeError("take: index must be 1-D int64")
    _contiguous_arg(index, "take: index")
    _contiguous_arg(out, "take: out")
    out.np[...] = np.take(x.np, index.np, axis=axis)


def _index_fits(index: Array, target: Array, axis: int, op: str) -> None:
    if index.dtype != "int64" or index.ndim != target.ndim:
        raise TypeError(f"{op}: index must be int64 with the target's number of dims")
    if any(d != axis and i > t for d, (i, t) in enumerate(zip(index.shape, target.shape))):
        raise ValueError(f"{op}: index shape {index.shape} exceeds {target.shape}")


def gather(out: Array, x: Array, index: Array, axis: int) -> None:
    _same(out, index.shape, "gather: out")
    _contiguous_arg(out, "gather: out")
    _index_fits(index, x, axis, "gather")
    grids = list(np.ix_(*[np.arange(s) for s in index.shape]))
    grids[axis] = index.np % x.shape[axis]
    out.np[...] = x.np[tuple(grids)]


def scatter(out: Array, index: Array, values: Array, axis: int, accumulate: bool) -> None:
    _same(values, index.shape, "scatter: values")
    _index_fits(index, out, axis, "scatter")
    _writable(out, "scatter")
    if values.dtype != out.dtype or index.dtype != "int64":
        raise TypeError("scatter: dtypes")
    grids = list(np.ix_(*[np.arange(s) for s in index.shape]))
    grids[axis] = index.np % out.shape[axis]
    target = out.np
    if accumulate:
        np.add.at(target, tuple(grids), values.np)
    else:
        target[tuple(grids)] = values.np


def _rng(seed: int, offset: int) -> np.random.Generator:
    return np.random.default_rng([seed, offset])


def random_uniform(out: Array, seed: int, offset: int) -> None:
    _contiguous_arg(out, "random: out")
    out.np[...] = _rng(seed, offset).random(out.shape)


def random_normal(out: Array, seed: int, offset: int) -> None:
    out.np[...] = _rng(seed, offset).standard_normal(out.shape)


def random_int(out: Array, low: int, high: int, seed: int, offset: int) -> None:
    out.np[...] = _rng(seed, offset).integers(low, high, out.shape)


def argsort(out: Array, x: Array) -> None:
    if x.ndim != 2:
        raise ValueError(f"argsort: expected x (rows, n), got shape {x.shape}")
    _contiguous_arg(x, "argsort: x")
    _dense(out, "int64", x.shape, "argsort: out")
    _writable(out, "argsort")
    out.np[...] = np.argsort(x.np, axis=-1, kind="stable")


def matmul(out: Array, a: Array, b: Array, bf16: bool = False) -> None:
    if a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape}")
    _same(out, a.shape[:-1] + b.shape[-1:], "matmul: out")
    _contiguous_arg(out, "matmul: out")
    if bf16 and a.dtype != "float32":
        raise TypeError(f"matmul: bf16 needs float32 operands, got {a.dtype}")
    x, y = _inputs(bf16, a, b)
    out.np[...] = np.matmul(x.astype(np.float64), y) if bf16 else np.matmul(x, y)


def _dense(a: Array, dtype: str, shape, what: str) -> None:
    if a.dtype != dtype:
        raise TypeError(f"{what} must be {dtype}, got {a.dtype}")
    _same(a, shape, what)
    _contiguous_arg(a, what)


def layer_norm_forward(out: Array, mean: Array, rstd: Array, x: Array, weight, bias, eps: float) -> None:
    if x.dtype not in ("float32", "float64"):
        raise TypeError(f"layer_norm: x must be float32 or float64, got {x.dtype}")
    for a, shape, what in ((x, x.shape, "x"), (out, x.shape, "out"), (mean, x.shape[:-1], "mean"), (rstd, x.shape[:-1], "rstd")):
        _dense(a, x.dtype, shape, f"layer_norm: {what}")
    for a in (weight, bias):
        if a is not None:
            _dense(a, x.dtype, x.shape[-1:], "layer_norm: weight and bias")
    v = x.np.astype(np.float64)
    with np.errstate(all="ignore"):
        mu = v.mean(-1)
        rs = 1 / np.sqrt(((v - mu[..., None]) ** 2).mean(-1) + eps)
        y = (v - mu[..., None]) * rs[..., None]
    if weight is not None:
        y = y * weight.np
    if bias is not None:
        y = y + bias.np
    out.np[...], mean.np[...], rstd.np[...] = y, mu, rs


def layer_norm_backward(dx: Array, dweight, dbias, g: Array, x: Array, weight, mean: Array, rstd: Array) -> None:
    for a, shape, what in ((dx, x.shape, "dx"), (g, x.shape, "g"), (x, x.shape, "x"), (mean, x.shape[:-1], "mean"),
                           (rstd, x.shape[:-1], "rstd")):
        _dense(a, x.dtype, shape, f"layer_norm_backward: {what}")
    for a in (dweight, dbias, weight):
        if a is not None:
            _dense(a, x.dtype, x.shape[-1:], "layer_norm_backward: weight and its gradients")
    gv, rs = g.np.astype(np.float64), rstd.np[..., None].astype(np.float64)
    xhat = (x.np - mean.np[..., None]) * rs
    gw = gv if weight is None else gv * weight.np
    dx.np[...] = rs * (gw - gw.mean(-1, keepdims=True) - xhat * (gw * xhat).mean(-1, keepdims=True))
    lead = tuple(range(x.ndim - 1))
    if dweight is not None:
        dweight.np[...] = (gv * xhat).sum(lead)
    if dbias is not None:
        dbias.np[...] = gv.sum(lead)


def adamw_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, lr, beta1, beta2, eps, weight_decay,
               decoupled, maximize) -> None:
    k = len(params)
    if not all(len(xs) == k for xs in (grads, exp_avgs, exp_avg_sqs, steps)) or (
            max_exp_avg_sqs is not None and len(max_exp_avg_sqs) != k):
        raise ValueError(f"adamw_step: expected {k} grads, states and steps, one per param")
    for i, p in enumerate(params):
        if p.dtype != params[0].dtype:
            raise ValueError("adamw_step: params must share one dtype (call once per dtype)")
        for a in (p, grads[i], exp_avgs[i], exp_avg_sqs[i]) + (() if max_exp_avg_sqs is None else (max_exp_avg_sqs[i],)):
            _dense(a, p.dtype, p.shape, "adamw_step: params, grads and states")
        if not steps[i] >= 1:
            raise ValueError(f"adamw_step: steps must be >= 1, got {steps[i]}")
    for i, p in enumerate(params):  # the update in float64, as written in the CPU kernel's reference
        g = -grads[i].np.astype(np.float64) if maximize else grads[i].np.astype(np.float64)
        pv, m, v = p.np.astype(np.float64), exp_avgs[i].np, exp_avg_sqs[i].np
        if weight_decay and decoupled:
            pv = pv * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * pv
        m[...] = m + (1 - beta1) * (g - m)
        v[...] = v * beta2 + (1 - beta2) * g * g
        denom = v
        if max_exp_avg_sqs is not None:
            vmax = max_exp_avg_sqs[i].np
            vmax[...] = np.maximum(vmax, v)
            denom = vmax
        step = float(steps[i])
        p.np[...] = pv - lr / (1 - beta1**step) * m / (np.sqrt(denom) / math.sqrt(1 - beta2**step) + eps)


def _cross_entropy_args(op: str, logits: Array, target: Array, rows, label_smoothing: float) -> None:
    if logits.dtype not in ("float32", "float64") or logits.ndim != 2:
        raise ValueError(f"{op}: logits must be float (N, C), got {logits.dtype} {logits.shape}")
    _dense(logits, logits.dtype, logits.shape, f"{op}: logits")
    _dense(target, "int64", logits.shape[:1], f"{op}: target")
    for a in rows:
        _dense(a, logits.dtype, logits.shape[:1], f"{op}: per-row operand")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")


def _lse(x):
    m = x.max(-1, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(all="ignore"):
        return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[:, 0]


def cross_entropy_forward(losses: Array, lse: Array, logits: Array, target: Array, ignore_index: int,
                          label_smoothing: float) -> None:
    _cross_entropy_args("cross_entropy", logits, target, (losses, lse), label_smoothing)
    x, t = logits.np.astype(np.float64), target.np
    n, c = x.shape
    l = _lse(x)
    ok = (t >= 0) & (t < c)
    picked = x[np.arange(n), np.where(ok, t, 0)]
    with np.errstate(all="ignore"):
        loss = l - picked
        if label_smoothing:
            loss = (1 - label_smoothing) * loss + label_smoothing * (l - x.mean(-1))
    losses.np[...] = np.where(t == ignore_index, 0, np.where(ok, loss, np.nan))
    lse.np[...] = l


def cross_entropy_backward(dlogits: Array, g: Array, logits: Array, target: Array, lse: Array, ignore_index: int,
                           label_smoothing: float) -> None:
    _cross_entropy_args("cross_entropy_backward", logits, target, (g, lse), label_smoothing)
    _dense(dlogits, logits.dtype, logits.shape, "cross_entropy_backward: dlogits")
    x, t = logits.np.astype(np.float64), target.np
    n, c = x.shape
    ok = (t >= 0) & (t < c)
    # The kernel recomputes lse where the saved one (rounded to the dtype) would cost precision; in float64 here.
    l = np.where(np.isfinite(lse.np), _lse(x), lse.np)
    with np.errstate(all="ignore"):
        d = np.exp(x - l[:, None]) - label_smoothing / c
    d[np.arange(n)[ok], t[ok]] -= 1 - label_smoothing
    d = d * g.np[:, None]
    d[~ok] = np.nan
    d[t == ignore_index] = 0
    dlogits.np[...] = d


def foreach_sum_squares(out: Array, xs: list) -> None:
    _dense(out, "float64", (len(xs),), "foreach_sum_squares: out")
    _writable(out, "foreach_sum_squares")
    for x in xs:
        if x.dtype not in ("float32", "float64") or x.dtype != xs[0].dtype:
            raise TypeError("foreach_sum_squares: tensors must share one float dtype")
        _contiguous_arg(x, "foreach_sum_squares: tensors")
    out.np[...] = [np.sum(np.square(x.np.astype(np.float64))) for x in xs]


def foreach_mul_(xs: list, scale: Array) -> None:
    for i, x in enumerate(xs):
        if x.dtype not in ("float32", "float64") or x.dtype != xs[0].dtype:
            raise TypeError("foreach_mul_: tensors must share one float dtype")
        _contiguous_arg(x, "foreach_mul_: tensors")
        _writable(x, "foreach_mul_")
        for j in range(i):
            if xs[j].buffer_id == x.buffer_id and xs[j].offset < x.offset + x.size and x.offset < xs[j].offset + xs[j].size:
                raise ValueError(f"foreach_mul_: tensors {j} and {i} share memory")
    if xs and scale.dtype != xs[0].dtype:
        raise TypeError("foreach_mul_: scale must have the tensors' dtype")
    if scale.size != 1:
        raise ValueError(f"foreach_mul_: scale must hold one element, got shape {scale.shape}")
    for x in xs:
        x.np[...] = x.np * scale.np.reshape(())


def embedding_backward(out: Array, g: Array, index: Array) -> None:
    if out.dtype not in ("float32", "float64"):
        raise TypeError("embedding_backward: out must be float")
    if out.ndim != 2 or g.ndim != 2 or index.ndim != 1:
        raise ValueError(f"embedding_backward: expected out (rows, cols), g (n, cols) and index (n,), got shapes "
                         f"{out.shape}, {g.shape} and {index.shape}")
    _dense(out, out.dtype, out.shape, "embedding_backward: out")
    _dense(g, out.dtype, (index.shape[0], out.shape[1]), "embedding_backward: g")
    _dense(index, "int64", index.shape, "embedding_backward: index")
    _writable(out, "embedding_backward")
    rows = out.shape[0]
    i = np.where(index.np < 0, index.np + rows, index.np)
    keep = (i >= 0) & (i < rows)
    acc = np.zeros(out.shape, out.np.dtype)
    np.add.at(acc, i[keep], g.np[keep])
    out.np[...] = acc


def _attention_args(op: str, q: Array, k: Array, v: Array) -> None:
    for a in (q, k, v):
        _dense(a, "float32", a.shape, f"{op}: q, k and v")
        if a.ndim != 3:
            raise ValueError(f"{op}: q, k and v must be (BH, T, D), got shape {a.shape}")
    if q.shape[2] not in (32, 64, 128):
        raise ValueError(f"{op}: head dim must be 32, 64 or 128, got {q.shape[2]}")
    _same(k, (q.shape[0], k.shape[1], q.shape[2]), f"{op}: k")
    _same(v, k.shape, f"{op}: v")


def _attention_probs(q, k, causal: bool, scale: float):
    s = np.einsum("bid,bjd->bij", q.astype(np.float64), k.astype(np.float64)) * scale
    if causal:
        s = np.where(np.arange(k.shape[1]) > np.arange(q.shape[1])[:, None], -np.inf, s)
    m = s.max(-1, keepdims=True, initial=-np.inf)
    with np.errstate(all="ignore"):
        lse = (np.log(np.exp(s - m).sum(-1, keepdims=True)) + m)[..., 0]
        return np.exp(s - lse[..., None]), lse


def _inputs(bf16: bool, *arrays: Array) -> list:
    """The arrays' values as the kernels read them: rounded to bfloat16 with bf16."""
    return [round_bf16(a.np) if bf16 else a.np for a in arrays]


def attention_forward(out: Array, lse: Array, q: Array, k: Array, v: Array, causal: bool, scale: float,
                      bf16: bool = False) -> None:
    _attention_args("attention", q, k, v)
    _dense(out, "float32", q.shape, "attention: out")
    _dense(lse, "float32", q.shape[:2], "attention: lse")
    qn, kn, vn = _inputs(bf16, q, k, v)
    p, l = _attention_probs(qn, kn, causal, scale)
    out.np[...] = p @ vn.astype(np.float64)
    lse.np[...] = l


def attention_backward(dq: Array, dk: Array, dv: Array, g: Array, q: Array, k: Array, v: Array, out: Array, lse: Array,
                       causal: bool, scale: float, bf16: bool = False) -> None:
    _attention_args("attention_backward", q, k, v)
    for a in (dq, g, out):
        _dense(a, "float32", q.shape, "attention_backward: dq, g and out")
    for a in (dk, dv):
        _dense(a, "float32", k.shape, "attention_backward: dk and dv")
    _dense(lse, "float32", q.shape[:2], "attention_backward: lse")
    gn, qn, kn, vn = _inputs(bf16, g, q, k, v)
    p, _ = _attention_probs(qn, kn, causal, scale)
    p = np.nan_to_num(p)  # a row that sees no key contributes nothing
    gv, vv = gn.astype(np.float64), vn.astype(np.float64)
    dp = gv @ vv.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    dq.np[...] = ds @ kn * scale
    dk.np[...] = ds.transpose(0, 2, 1) @ qn * scale
    dv.np[...] = p.transpose(0, 2, 1) @ gv


def memory_allocated() -> int:
    return sum(_live.values())


memory_reserved = memory_allocated


def empty_cache() -> None:
    pass


def synchronize() -> None:
    pass


def status() -> str:
    return "ok"


def device_count() -> int:
    return 1


def device_name(i: int) -> str:
    return "NumPy emulator"


def use(monkeypatch) -> None:
    """Route pyzen's CUDA backend to this emulator for one test (pytest's monkeypatch)."""
    import pyzen
    from pyzen.backend import cuda as cuda_backend
    from pyzen.backend import cuda_array

    monkeypatch.setattr(pyzen.cuda, "_probe", lambda: (sys.modules[__name__], None))
    monkeypatch.setattr(cuda_backend, "_cuda", sys.modules[__name__])
    monkeypatch.setattr(cuda_array, "_cuda", sys.modules[__name__])
