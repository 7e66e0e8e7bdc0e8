"""Fused ops a training step spends its time in: layer norm, attention, cross-entropy.
Each calls one backend primitive forward and one backward (native kernels on the CPU)."""
from __future__ import annotations

import math
from typing import Any

from .. import _dtype
from .._tensor import Tensor
from ..autograd.function import Function
from ._util import autocast_bf16, be, check_index, first_out_of_range


class LayerNorm(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        out, mean, rstd = be(x).layer_norm_forward(x, weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight, mean, rstd = ctx._saved
        return be(g).layer_norm_backward(g, x, weight, mean, rstd, ctx.has_bias)


class ScaledDotProductAttention(Function):
    """bf16: q, k, v (and g) rounded to bfloat16, float32 accumulation (autocast)."""

    _raw = True

    @staticmethod
    def forward(ctx, q, k, v, mask, is_causal, scale, bf16):
        out, lse = be(q).attention_forward(q, k, v, mask, is_causal, scale, bf16)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.mask, ctx.is_causal, ctx.scale, ctx.bf16 = mask, is_causal, scale, bf16
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, out, lse = ctx._saved
        return be(g).attention_backward(g, q, k, v, out, lse, ctx.mask, ctx.is_causal, ctx.scale, ctx.bf16)


class CrossEntropy(Function):
    """Per-row losses of (N, C) logits against class indices (softmax fused in)."""

    _raw = True

    @staticmethod
    def forward(ctx, logits, target, ignore_index, label_smoothing):
        losses, lse = be(logits).cross_entropy_forward(logits, target, ignore_index, label_smoothing)
        ctx.save_for_backward(logits, target, lse)
        ctx.ignore_index, ctx.label_smoothing = ignore_index, label_smoothing
        return losses

    @staticmethod
    def backward(ctx, g):
        logits, target, lse = ctx._saved
        return be(g).cross_entropy_backward(g, logits, target, lse, ctx.ignore_index, ctx.label_smoothing)


class BinaryCrossEntropy(Function):
    """Elementwise -(t log p + (1 - t) log(1 - p)), logs clamped at -100 (PyTorch's rule)."""

    _raw = True

    @staticmethod
    def forward(ctx, p, t):
        bx = be(p)
        with bx.errstate():  # log(0) = -inf before the clamp
            log_p, log_q = bx.maximum(bx.log(p), -100), bx.maximum(bx.log(1 - p), -100)
        ctx.save_for_backward(p, t, log_p, log_q)
        return -(t * log_p + (1 - t) * log_q)

    @staticmethod
    def backward(ctx, g):
        p, t, log_p, log_q = ctx._saved
        bx = be(p)
        # d/dp is (p - t) / (p (1 - p)), with the denominator kept >= 1e-12 as in PyTorch.
        return g * (p - t) / bx.maximum(p * (1 - p), 1e-12), g * (log_q - log_p)


# ---- public functions ----
def layer_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing `normalized_shape` dims, then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise RuntimeError(f"layer_norm: normalized_shape {shape} does not match the trailing dims of input shape {tuple(input.shape)}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise RuntimeError(f"layer_norm: {name} has shape {tuple(p.shape)}, expected {shape}")
    if not input.is_floating_point():
        raise TypeError(f"layer_norm: expected a floating point input, got {input.dtype!r}")
    if len(shape) != 1:  # normalise over several dims by flattening them into one
        lead = tuple(input.shape[: input.ndim - len(shape)])
        n = math.prod(shape)
        flat = layer_norm(input.reshape(lead + (n,)), n, None if weight is None else weight.reshape(n), None if bias is None else bias.reshape(n), eps)
        return flat.reshape(tuple(input.shape))
    return LayerNorm.apply(input, weight, bias, float(eps))


def scaled_dot_product_attention(
    query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None, dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None
) -> Tensor:
    """softmax(q k^T * scale + mask) v, flash-style: no (T x T) matrix is kept for backward.
    Under `pyzen.autocast(device, dtype=pyzen.bfloat16)`, float32 q, k, v are rounded to
    bfloat16 and the products accumulate in float32 (tensor cores on CUDA)."""
    if query.ndim < 2 or key.ndim != query.ndim or value.ndim != query.ndim:
        raise RuntimeError(f"scaled_dot_product_attention: expected q, k, v with the same number (>= 2) of dims, got shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: shapes q {tuple(query.shape)}, k {tuple(key.shape)}, v {tuple(value.shape)} do not fit (q and k need the same head dim, k and v the same length)")
    if not (query.dtype == key.dtype == value.dtype) or not query.is_floating_point():
        raise TypeError(f"scaled_dot_product_attention: expected q, k, v of one floating dtype, got {query.dtype!r}, {key.dtype!r}, {value.dtype!r}")
    if attn_mask is not None and is_causal:
        raise RuntimeError("scaled_dot_product_attention: pass either attn_mask or is_causal, not both")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}")
    if scale is None:  # a head dim of 0 gives inf, as 1/sqrt(0) does in PyTorch's C++ (was ZeroDivisionError)
        scale = 1.0 / math.sqrt(query.shape[-1]) if query.shape[-1] else math.inf
    scale = float(scale)
    mask = None
    if attn_mask is not None:
        mask = attn_mask._data
        if mask.dtype.kind not in "bf":
            raise TypeError(f"scaled_dot_product_attention: attn_mask must be bool or floating, got {attn_mask.dtype!r}")
        if mask.dtype.kind == "f" and mask.dtype != query._data.dtype:
            mask = mask.astype(query._data.dtype)
    bf16 = autocast_bf16(query)
    if dropout_p > 0.0:  # composed of matmuls, which autocast themselves
        return _attention_with_dropout(query, key, value, mask, is_causal, scale, dropout_p)
    return ScaledDotProductAttention.apply(query, key, value, mask, bool(is_causal), scale, bf16)


def _attention_with_dropout(q: Tensor, k: Tensor, v: Tensor, mask: Any, is_causal: bool, scale: float, p: float) -> Tensor:
    """The composed path: dropout needs the probabilities, which the fused kernel never stores."""
    from . import elementwise, reduction

    s = (q @ k.mT) * scale
    tq, tk = s.shape[-2], s.shape[-1]
    if is_causal:
        keep = Tensor._make(be(s._data).tril(be(s._data).ones((tq, tk), bool)))
        s = elementwise.masked_fill(s, elementwise.logical_not(keep), -math.inf)
    if mask is not None:
        m = Tensor._make(mask)
        s = elementwise.masked_fill(s, elementwise.logical_not(m), -math.inf) if mask.dtype.kind == "b" else s + m
    attn = reduction.softmax(s, -1)
    return dropout(attn, p, True) @ v


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p), when training."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    from .elementwise import mul

    x = input._data
    bx = be(x)
    if p == 1.0:
        return mul(input, 0.0)
    keep = (bx.rand(x.shape, x.dtype) >= p).astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return mul(input, Tensor._make(keep))


def classes_last(input: Tensor, target: Any, ignore_index: int, op: str) -> tuple[Tensor, Any, tuple]:
    """Scores (N, C, d1, ...) or unbatched (C,) as rows (M, C), class indices (M,) checked to be
    in range (ignore_index aside), and the shape per-element losses take."""
    from . import shape

    t = check_index(target, op)
    if input.ndim == 1:
        input, t = input.unsqueeze(0), t.reshape(1) if t.ndim == 0 else t
    if input.ndim > 2:  # (N, C, d1, ...) -> (N * d1 * ..., C)
        perm = (0,) + tuple(range(2, input.ndim)) + (1,)
        input = shape.permute(input, perm).reshape(-1, input.shape[1])
    out_shape = tuple(t.shape)
    t = t.reshape(-1)
    if t.shape[0] != input.shape[0]:
        raise RuntimeError(f"{op}: expected target with {input.shape[0]} elements, got shape {out_shape}")
    n_classes = input.shape[1]
    bad = first_out_of_range(t, n_classes, ignore_index) if t.size else None
    if bad is not None:
        raise IndexError(f"{op}: target {bad} is out of bounds for {n_classes} classes")
    return input, t.astype(_dtype.int64.np, copy=False), out_shape


def cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
) -> Tensor:
    """Cross-entropy of logits (N, C) or (N, C, d1, ...) against class indices of shape (N, ...)."""
    from . import reduction as R

    if weight is not None:
        raise NotImplementedError("cross_entropy: class weights are not supported yet")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    input, t, out_shape = classes_last(input, target, ignore_index, "cross_entropy")
    x = input if input.is_floating_point() else input.float()
    losses = CrossEntropy.apply(x, t, int(ignore_index), float(label_smoothing))
    if reduction == "none":
        return losses.reshape(out_shape)
    if reduction == "sum":
        return R.sum(losses)
    count = Tensor._make((t != ignore_index).astype(_dtype.int64.np).sum())  # stays on the device: no sync
    return R.sum(losses) / count  # 0 / 0 = nan when every target is ignored, as in PyTorch
