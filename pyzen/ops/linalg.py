"""matmul: 1-D, 2-D and batched with broadcast batch dims, on the backend's native kernel.
Under pyzen.autocast(dtype=pyzen.bfloat16), float32 products round their operands to
bfloat16 and accumulate in float32 (tensor cores on CUDA), backward products too."""
from __future__ import annotations

from .. import _dtype
from .._tensor import Tensor
from ..autograd.function import Function
from ._util import autocast_bf16, be


class Matmul(Function):
    """(..., M, K) @ (..., K, N) with equal batch shapes; backward reads transposed views,
    so no transpose is ever copied."""

    _raw = True

    @staticmethod
    def forward(ctx, a, b, bf16):
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None, a if ctx.needs_input_grad[1] else None)
        ctx.bf16 = bf16
        return be(a).matmul(a, b, bf16)

    @staticmethod
    def backward(ctx, g):
        b, a = ctx._saved
        bx = be(g)
        ga = bx.matmul(g, bx.swapaxes(b, -1, -2), ctx.bf16) if b is not None else None
        gb = bx.matmul(bx.swapaxes(a, -1, -2), g, ctx.bf16) if a is not None else None
        return ga, gb, None


class MatmulFolded(Function):
    """(..., M, K) @ (K, N): the batch folds into M, one large product instead of many."""

    _raw = True

    @staticmethod
    def forward(ctx, a, b, bf16):
        bx = be(a)
        lead = a.shape[:-1]
        a2 = bx.reshape(a, (-1, a.shape[-1]))
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None, a2 if ctx.needs_input_grad[1] else None)
        ctx.lead, ctx.bf16 = lead, bf16
        return bx.reshape(bx.matmul(a2, b, bf16), lead + (b.shape[-1],))

    @staticmethod
    def backward(ctx, g):
        b, a2 = ctx._saved
        bx = be(g)
        g2 = bx.reshape(g, (-1, g.shape[-1]))
        ga = bx.reshape(bx.matmul(g2, bx.swapaxes(b, 0, 1), ctx.bf16), ctx.lead + (b.shape[0],)) if b is not None else None
        gb = bx.matmul(bx.swapaxes(a2, 0, 1), g2, ctx.bf16) if a2 is not None else None
        return ga, gb, None


class Linear(Function):
    """x (..., K) @ w.T + bias with w (N, K), as one node: the batch folds into one product,
    the kernel adds the bias as it writes the output, and the weight's gradient is computed as g.T @ x, which is already w's (N, K) layout
    (through a transposed view, x.T @ g, it came out (K, N) and had to be copied across)."""

    _raw = True

    @staticmethod
    def forward(ctx, x, w, bias, bf16):
        bx = be(x)
        lead = x.shape[:-1]
        x2 = bx.reshape(x, (-1, x.shape[-1]))
        ctx.save_for_backward(w if ctx.needs_input_grad[0] else None, x2 if ctx.needs_input_grad[1] else None)
        ctx.lead, ctx.bf16, ctx.has_bias = lead, bf16, bias is not None
        out = bx.matmul(x2, bx.swapaxes(w, 0, 1), bf16, bias)  # the bias seeds the products
        return bx.reshape(out, lead + (w.shape[0],))

    @staticmethod
    def backward(ctx, g):
        w, x2 = ctx._saved
        bx = be(g)
        g2 = bx.reshape(g, (-1, g.shape[-1]))
        gx = bx.reshape(bx.matmul(g2, w, ctx.bf16), ctx.lead + (w.shape[1],)) if w is not None else None
        gw = bx.matmul(bx.swapaxes(g2, 0, 1), x2, ctx.bf16) if x2 is not None else None
        gb = bx.sum_to(g2, (g2.shape[1],)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias, with weight laid out [out_features, in_features] like PyTorch."""
    plain = (
        all(isinstance(t, Tensor) for t in (input, weight)) and input.ndim >= 1 and weight.ndim == 2
        and input.shape[-1] == weight.shape[1] and input._data.dtype == weight._data.dtype
        and input.dtype is not _dtype.bool_
        and (bias is None or (isinstance(bias, Tensor) and tuple(bias.shape) == (weight.shape[0],)
                              and bias._data.dtype == weight._data.dtype))
    )
    if plain:
        return Linear.apply(input, weight, bias, autocast_bf16(input))
    out = matmul(input, weight.mT)  # names what is wrong, or broadcasts an unusual bias below
    return out if bias is None else out + bias


def matmul(input: Tensor, other: Tensor) -> Tensor:
    a, b = input, other
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul: expected two Tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dim, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a._data.dtype != b._data.dtype:
        raise TypeError(f"matmul: expected both tensors to have the same dtype, got {a.dtype!r} and {b.dtype!r}")
    if a.dtype is _dtype.bool_:
        raise TypeError("matmul: bool tensors are not supported")
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise RuntimeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied ({ka} != {kb})")
    if b.ndim == 1:
        return matmul(a, b.unsqueeze(-1)).squeeze(-1)
    if a.ndim == 1:
        return matmul(a.unsqueeze(0), b).squeeze(-2)
    bf16 = autocast_bf16(a)
    if b.ndim == 2:
        return MatmulFolded.apply(a, b, bf16) if a.ndim > 2 else Matmul.apply(a, b, bf16)
    batch_a, batch_b = tuple(a.shape[:-2]), tuple(b.shape[:-2])
    try:
        batch = tuple(be(a._data).broadcast_shapes(batch_a, batch_b))
    except ValueError:
        raise RuntimeError(
            f"matmul: batch dims of shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together"
        ) from None
    if batch_a != batch:
        a = a.expand(batch + tuple(a.shape[-2:]))
    if batch_b != batch:
        b = b.expand(batch + tuple(b.shape[-2:]))
    return Matmul.apply(a, b, bf16)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: expected 3-D tensors with equal batch, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    return matmul(input, mat2)
