"""The fused training primitives on CUDA, with the CPU kernels' signatures and semantics.
Layer norm, softmax cross-entropy (forward and backward each), Adam/AdamW (one
multi-tensor launch) and flash attention (float32 arrays, head dims 32, 64 and 128, no mask;
with bf16, inputs rounded to bfloat16 and products on tensor cores) are dedicated kernels
(cuda/*_kernels.cuh). Attention outside the flash kernels' cases is
composed from the generic kernels (matmul, reductions, elementwise): correct, every step
on the device, but a launch and a pass over memory per step.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import cuda_array as ca
from .cuda_array import CudaArray


def _cuda() -> Any:
    """The kernel module in use (pyzen._cuda, or the test emulator that stands in for it)."""
    return ca._cuda


def _as(x: Any, dtype: np.dtype) -> Any:
    return None if x is None else ca.astype(ca.asarray(x), dtype, False)


def _dense(x: Any, dtype: np.dtype) -> Any:
    """x as a contiguous device array of dtype (None stays None): the dedicated kernels' operands."""
    return None if x is None else ca.contiguous(_as(x, dtype))


def _raw(x: Any) -> Any:
    return None if x is None else x._a


def layer_norm_forward(x: CudaArray, weight: Any, bias: Any, eps: float) -> tuple:
    """Normalise over the last dim (one kernel). Returns (out, mean, rstd); mean and rstd
    have shape x.shape[:-1]."""
    x = ca.contiguous(x)
    out, mean, rstd = ca.empty(x.shape, x.dtype), ca.empty(x.shape[:-1], x.dtype), ca.empty(x.shape[:-1], x.dtype)
    _cuda().layer_norm_forward(out._a, mean._a, rstd._a, x._a, _raw(_dense(weight, x.dtype)), _raw(_dense(bias, x.dtype)), float(eps))
    return out, mean, rstd


def layer_norm_backward(g: Any, x: CudaArray, weight: Any, mean: Any, rstd: Any, need_bias: bool) -> tuple:
    """(dx, dweight or None, dbias or None) for layer_norm_forward (one row kernel, then a
    fixed-order column sum for dweight and dbias)."""
    x = ca.contiguous(x)
    g = _dense(ca.broadcast_to(_as(g, x.dtype), x.shape), x.dtype)
    weight = _dense(weight, x.dtype)
    c = x.shape[-1]
    dx = ca.empty(x.shape, x.dtype)
    dweight = None if weight is None else ca.empty((c,), x.dtype)
    dbias = ca.empty((c,), x.dtype) if need_bias else None
    _cuda().layer_norm_backward(dx._a, _raw(dweight), _raw(dbias), g._a, x._a, _raw(weight),
                                _dense(mean, x.dtype)._a, _dense(rstd, x.dtype)._a)
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


def _flash_ok(q: CudaArray, k: CudaArray, v: CudaArray, mask: Any) -> bool:
    """Whether the flash kernels cover this call: no mask, float32, head dim 32, 64 or 128, one
    batch shape (no broadcasting). Other calls take the composed path."""
    return (mask is None and q.dtype == k.dtype == v.dtype == np.float32 and q.shape[-1] in (32, 64, 128)
            and q.ndim >= 2 and k.shape == v.shape and q.shape[:-2] == k.shape[:-2] and k.shape[-1] == q.shape[-1])


def _heads(x: Any, dtype: np.dtype = np.dtype(np.float32)) -> CudaArray:
    """x as a contiguous (BH, T, D) array."""
    x = _dense(x, dtype)
    return ca.reshape(x, (math.prod(x.shape[:-2]),) + x.shape[-2:])  # not -1: BH may be 0


def foreach_sum_squares(xs: list) -> CudaArray:
    """Each array's sum of squares, accumulated in float64, as a (len(xs),) float64 array: a
    few launches for all of them (one dtype per call; non-contiguous arrays are copied)."""
    out = ca.empty((len(xs),), np.float64)
    _cuda().foreach_sum_squares(out._a, [ca.contiguous(x)._a for x in xs])
    return out


def foreach_mul_(xs: list, scale: Any) -> None:
    """Every array times `scale` (a 0-d array of their dtype), in place: one launch for the
    contiguous ones."""
    dense = [x for x in xs if ca.is_contiguous(x)]
    _cuda().foreach_mul_([x._a for x in dense], ca.asarray(scale)._a)
    for x in xs:
        if not ca.is_contiguous(x):
            x *= scale


def embedding_backward(g: CudaArray, index: Any, num_rows: int) -> CudaArray:
    """The gradient of rows picked by `index` (any shape) from a (num_rows, ...) array: g
    summed into each row in position order by a sort, not atomics (deterministic)."""
    index = ca.asarray(index)
    rest = g.shape[index.ndim:]
    n, c = math.prod(index.shape), math.prod(rest)
    out = ca.empty((num_rows, c), g.dtype)
    _cuda().embedding_backward(out._a, ca.reshape(ca.contiguous(g), (n, c))._a,
                               ca.reshape(_dense(index, np.dtype(np.int64)), (n,))._a)
    return ca.reshape(out, (num_rows,) + rest)


def round_bf16(x: CudaArray) -> CudaArray:
    """float32 x rounded to the nearest bfloat16 (ties to even), as float32."""
    return ca.unary("round_bf16", x)


def attention_forward(q: CudaArray, k: CudaArray, v: CudaArray, mask: Any, is_causal: bool, scale: float,
                      bf16: bool = False) -> tuple:
    """softmax(q k^T * scale + mask) v. Returns (out, lse), lse of shape (..., Tq); fully
    masked rows give NaN output and lse = -inf, like the CPU kernel. Flash kernels where
    _flash_ok, else composed from matmul and softmax pieces. bf16: q, k, v (float32)
    rounded to bfloat16 (tensor-core kernels on the flash path)."""
    if _flash_ok(q, k, v, mask):
        q3, k3, v3 = _heads(q), _heads(k), _heads(v)
        out, lse = ca.empty(q3.shape, np.float32), ca.empty(q3.shape[:2], np.float32)
        _cuda().attention_forward(out._a, lse._a, q3._a, k3._a, v3._a, bool(is_causal), float(scale), bool(bf16))
        return ca.reshape(out, q.shape), ca.reshape(lse, q.shape[:-1])
    if bf16:
        q, k, v = round_bf16(q), round_bf16(k), round_bf16(v)
    s = _masked_scores(q, k, mask, is_causal, scale)
    lse = _logsumexp_last(s)
    p = ca.unary("exp", s - ca.expand_dims(lse, -1))
    lead = s.shape[:-2]
    return ca.matmul(p, ca.broadcast_to(v, lead + v.shape[-2:])), lse


def _logsumexp_last(s: CudaArray) -> CudaArray:
    m = ca.amax(s, axis=-1, keepdims=True)
    m = ca.where(ca.unary("isfinite", m), m, 0)
    return ca.squeeze(ca.unary("log", ca.sum(ca.unary("exp", s - m), -1, True)) + m, -1)


def attention_backward(g: Any, q: CudaArray, k: CudaArray, v: CudaArray, out: Any, lse: Any, mask: Any, is_causal: bool, scale: float,
                       bf16: bool = False) -> tuple:
    """(dq, dk, dv) for attention_forward, in the broadcast batch shape; fully masked rows
    contribute nothing. bf16: g, q, k, v rounded as in the forward."""
    if _flash_ok(q, k, v, mask):
        q3, k3, v3 = _heads(q), _heads(k), _heads(v)
        dq, dk, dv = ca.empty(q3.shape, np.float32), ca.empty(k3.shape, np.float32), ca.empty(k3.shape, np.float32)
        lse3 = ca.reshape(_dense(ca.broadcast_to(_as(lse, np.float32), q.shape[:-1]), np.float32), q3.shape[:2])
        g3 = _heads(ca.broadcast_to(_as(g, np.float32), q.shape))
        _cuda().attention_backward(dq._a, dk._a, dv._a, g3._a, q3._a, k3._a, v3._a, _heads(out)._a, lse3._a,
                                   bool(is_causal), float(scale), bool(bf16))
        return ca.reshape(dq, q.shape), ca.reshape(dk, k.shape), ca.reshape(dv, v.shape)
    if bf16:
        g, q, k, v = round_bf16(ca.asarray(g)), round_bf16(q), round_bf16(k), round_bf16(v)
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


def cross_entropy_forward(logits: CudaArray, target: Any, ignore_index: int, label_smoothing: float) -> tuple:
    """Per-row losses (0 where target == ignore_index) and each row's logsumexp, for (N, C)
    logits (one kernel; the caller has checked that targets are in range)."""
    logits = ca.contiguous(logits)
    n = logits.shape[0]
    losses, lse = ca.empty((n,), logits.dtype), ca.empty((n,), logits.dtype)
    _cuda().cross_entropy_forward(losses._a, lse._a, logits._a, _dense(target, np.dtype(np.int64))._a, int(ignore_index),
                                  float(label_smoothing))
    return losses, lse


def cross_entropy_backward(g: Any, logits: CudaArray, target: Any, lse: Any, ignore_index: int, label_smoothing: float) -> CudaArray:
    """d(sum_i g_i * loss_i)/d(logits) for cross_entropy_forward (one kernel)."""
    logits = ca.contiguous(logits)
    n = logits.shape[0]
    dlogits = ca.empty(logits.shape, logits.dtype)
    g = _dense(ca.broadcast_to(_as(g, logits.dtype), (n,)), logits.dtype)
    _cuda().cross_entropy_backward(dlogits._a, g._a, logits._a, _dense(target, np.dtype(np.int64))._a,
                                   _dense(lse, logits.dtype)._a, int(ignore_index), float(label_smoothing))
    return dlogits


def adamw_step(params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, max_exp_avg_sqs: list | None, steps: list, *,
               lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool, maximize: bool) -> None:
    """One Adam (decoupled=False) or AdamW step over every parameter, in place: one kernel
    launch per parameter dtype, with the CPU kernel's arithmetic. Params and states must be
    contiguous (they are updated in place); grads are cast and made contiguous if needed."""
    by_dtype: dict = {}
    for i, p in enumerate(params):
        by_dtype.setdefault(p.dtype, []).append(i)
    for dtype, idx in by_dtype.items():
        pick = lambda xs: [xs[i]._a for i in idx]  # noqa: E731
        _cuda().adamw_step(
            pick(params), [_dense(grads[i], dtype)._a for i in idx], pick(exp_avgs), pick(exp_avg_sqs),
            None if max_exp_avg_sqs is None else pick(max_exp_avg_sqs), [float(steps[i]) for i in idx],
            lr=float(lr), beta1=float(beta1), beta2=float(beta2), eps=float(eps),
            weight_decay=float(weight_decay), decoupled=bool(decoupled), maximize=bool(maximize),
        )
