"""The fused training primitives on CUDA, composed from the CUDA backend's generic kernels
(elementwise, reductions, matmul, scatter) with the CPU kernels' signatures and
semantics. Correct but unfused: each step is a kernel launch and a pass over memory.
Dedicated CUDA kernels for these are the CUDA training-kernels issue; until then this keeps
every training op on the device (no host round trip).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import cuda_array as ca
from .cuda_array import CudaArray


def _as(x: Any, dtype: np.dtype) -> Any:
    return None if x is None else ca.astype(ca.asarray(x), dtype, False)


def _mean_last(x: CudaArray) -> CudaArray:
    return ca.sum(x, -1, True) / x.dtype.type(max(x.shape[-1], 1))


def layer_norm_forward(x: CudaArray, weight: Any, bias: Any, eps: float) -> tuple:
    """Normalise over the last dim. Returns (out, mean, rstd); mean and rstd have shape x.shape[:-1]."""
    mean = _mean_last(x)
    d = x - mean
    rstd = 1.0 / ca.unary("sqrt", _mean_last(d * d) + eps)
    out = d * rstd
    if weight is not None:
        out = out * _as(weight, x.dtype)
    if bias is not None:
        out = out + _as(bias, x.dtype)
    return out, ca.squeeze(mean, -1), ca.squeeze(rstd, -1)


def layer_norm_backward(g: Any, x: CudaArray, weight: Any, mean: Any, rstd: Any, need_bias: bool) -> tuple:
    """(dx, dweight or None, dbias or None) for layer_norm_forward."""
    g = ca.broadcast_to(_as(g, x.dtype), x.shape)
    rstd = ca.expand_dims(_as(rstd, x.dtype), -1)
    xhat = (x - ca.expand_dims(_as(mean, x.dtype), -1)) * rstd
    gw = g if weight is None else g * _as(weight, x.dtype)
    dx = rstd * (gw - _mean_last(gw) - xhat * _mean_last(gw * xhat))
    lead = tuple(range(x.ndim - 1))
    dweight = None if weight is None else ca.sum(g * xhat, lead)
    dbias = ca.sum(g, lead) if need_bias else None
    return dx, dweight, dbias


def _masked_scores(q: CudaArray, k: CudaArray, mask: Any, is_causal: bool, scale: float) -> CudaArray:
    """q k^T * scale with the mask applied (False or -inf: no attention), batch dims broadcast."""
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], () if mask is None else tuple(mask.shape[:-2]))
    q = ca.broadcast_to(q, lead + q.shape[-2:])
    k = ca.broadcast_to(k, lead + k.shape[-2:])
    s = ca.matmul(q, ca.swapaxes(k, -1, -2)) * scale
    tq, tk = s.shape[-2], s.shape[-1]
    if is_causal:
        rows = ca.reshape(ca.arange(tq, dtype=np.int64), (tq, 1))
        s = ca.where(ca.arange(tk, dtype=np.int64) > rows, -math.inf, s)
    if mask is not None:
        mask = ca.asarray(mask)
        s = ca.where(mask, s, -math.inf) if mask.dtype == np.bool_ else s + ca.astype(mask, s.dtype, False)
    return s


def attention_forward(q: CudaArray, k: CudaArray, v: CudaArray, mask: Any, is_causal: bool, scale: float) -> tuple:
    """softmax(q k^T * scale + mask) v. Returns (out, lse), lse of shape (..., Tq); fully
    masked rows give NaN output and lse = -inf, like the CPU kernel."""
    s = _masked_scores(q, k, mask, is_causal, scale)
    lse = _logsumexp_last(s)
    p = ca.unary("exp", s - ca.expand_dims(lse, -1))
    lead = s.shape[:-2]
    return ca.matmul(p, ca.broadcast_to(v, lead + v.shape[-2:])), lse


def _logsumexp_last(s: CudaArray) -> CudaArray:
    m = ca.amax(s, axis=-1, keepdims=True)
    m = ca.where(ca.unary("isfinite", m), m, 0)
    return ca.squeeze(ca.unary("log", ca.sum(ca.unary("exp", s - m), -1, True)) + m, -1)


def attention_backward(g: Any, q: CudaArray, k: CudaArray, v: CudaArray, out: Any, lse: Any, mask: Any, is_causal: bool, scale: float) -> tuple:
    """(dq, dk, dv) for attention_forward, in the broadcast batch shape; fully masked rows
    contribute nothing."""
    s = _masked_scores(q, k, mask, is_causal, scale)
    lead = s.shape[:-2]
    lse = ca.broadcast_to(_as(lse, s.dtype), s.shape[:-1])
    p = ca.unary("exp", s - ca.expand_dims(lse, -1))
    p = ca.where(ca.expand_dims(ca.unary("isfinite", lse), -1), p, 0)
    g = ca.broadcast_to(_as(g, s.dtype), lead + (s.shape[-2], v.shape[-1]))
    q, k, v = (ca.broadcast_to(t, lead + t.shape[-2:]) for t in (q, k, v))
    dv = ca.matmul(ca.swapaxes(p, -1, -2), g)
    dp = ca.matmul(g, ca.swapaxes(v, -1, -2))
    ds = p * (dp - ca.sum(dp * p, -1, True))
    dq = ca.matmul(ds, k) * scale
    dk = ca.matmul(ca.swapaxes(ds, -1, -2), q) * scale
    return dq, dk, dv


def _target_parts(logits: CudaArray, target: Any, ignore_index: int) -> tuple:
    """(valid rows as bool (N,), target with ignored rows pointed at class 0, as (N, 1))."""
    target = _as(target, np.dtype(np.int64))
    valid = target != ignore_index
    return valid, ca.reshape(ca.where(valid, target, 0), (-1, 1))


def cross_entropy_forward(logits: CudaArray, target: Any, ignore_index: int, label_smoothing: float) -> tuple:
    """Per-row losses (0 where target == ignore_index) and each row's logsumexp, for (N, C) logits."""
    lse = _logsumexp_last(logits)
    valid, t = _target_parts(logits, target, ignore_index)
    picked = ca.squeeze(ca.take_along_axis(logits, t, 1), -1)
    eps = float(label_smoothing)
    loss = lse - (1 - eps) * picked
    if eps:
        loss = loss - eps * ca.squeeze(_mean_last(logits), -1)
    return ca.where(valid, loss, 0), lse


def cross_entropy_backward(g: Any, logits: CudaArray, target: Any, lse: Any, ignore_index: int, label_smoothing: float) -> CudaArray:
    """d(sum_i g_i * loss_i)/d(logits) for cross_entropy_forward."""
    n, c = logits.shape
    valid, t = _target_parts(logits, target, ignore_index)
    eps = float(label_smoothing)
    probs = ca.unary("exp", logits - ca.expand_dims(_as(lse, logits.dtype), -1))
    onehot = ca.full((n, c), 0, logits.dtype)
    ca._scatter(onehot, t, 1.0 - eps, 1, False)
    grad = probs - onehot - eps / c if eps else probs - onehot
    scale = ca.where(valid, ca.broadcast_to(_as(g, logits.dtype), (n,)), 0)
    return grad * ca.expand_dims(scale, -1)


def adamw_step(params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, max_exp_avg_sqs: list | None, steps: list, *,
               lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool, maximize: bool) -> None:
    """One Adam (decoupled=False) or AdamW step over every parameter, in place, with the CPU
    kernel's formula: p -= lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)."""
    for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        g = _as(g, p.dtype)
        if maximize:
            g = -g
        if weight_decay and decoupled:
            p *= 1 - lr * weight_decay
        elif weight_decay:
            g = g + weight_decay * p
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        denom_src = v
        if max_exp_avg_sqs is not None:
            vmax = max_exp_avg_sqs[i]
            ca._inplace(vmax, ca.binary("maximum", vmax, v))
            denom_src = vmax
        step = float(steps[i])
        step_size = lr / (1 - beta1**step)
        denom = ca.unary("sqrt", denom_src) / math.sqrt(1 - beta2**step) + eps
        p -= step_size * m / denom
