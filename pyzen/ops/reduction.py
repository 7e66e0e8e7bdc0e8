"""Reductions over an int or a tuple of dims (keepdim like PyTorch), and the softmax family."""
from __future__ import annotations

from collections import namedtuple
import builtins
from typing import Any

from .. import _dtype
from .._tensor import Tensor
from ..autograd.function import Function
from . import elementwise
from ._util import be, dim_arg, dims, keep, to_float

values_indices = namedtuple("values_indices", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])

Dim = "int | tuple[int, ...] | None"


def _require_float(x: Any, op: str) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point tensor, got {_dtype._FROM_NP[x.dtype]!r}")


class Sum(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False, dtype=None):
        axes = dims(dim, x.ndim, "sum")
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        if dtype is not None:
            x = x.astype(dtype.np)
        elif x.dtype.kind in "bi":
            x = x.astype(_dtype.int64.np)  # integer sums never overflow a narrow type, like PyTorch
        with be(x).errstate():  # inf + -inf is nan, silently, like PyTorch
            return be(x).sum(x, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        return be(g).broadcast_to(keep(g, ctx.shape, ctx.axes, ctx.keepdim), ctx.shape)


class Mean(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        _require_float(x, "mean")
        axes = dims(dim, x.ndim, "mean")
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.count = x.size if axes is None else _count(x.shape, axes)
        with be(x).errstate():  # the mean of nothing is nan
            return be(x).sum(x, axis=axes, keepdims=keepdim) / x.dtype.type(ctx.count)

    @staticmethod
    def backward(ctx, g):
        g = keep(g, ctx.shape, ctx.axes, ctx.keepdim) / g.dtype.type(builtins.max(ctx.count, 1))
        return be(g).broadcast_to(g, ctx.shape)


class Var(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False, op="var"):
        _require_float(x, op)
        axes = dims(dim, x.ndim, op)
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdim = axes, keepdim
        ctx.denominator = builtins.max((x.size if axes is None else _count(x.shape, axes)) - correction, 0)
        return be(x).var(x, axes, correction, keepdim)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx._saved
        bx = be(x)
        mean = bx.sum(x, axis=ctx.axes, keepdims=True) / x.dtype.type(builtins.max(_count(x.shape, ctx.axes), 1))
        with bx.errstate():
            return keep(g, x.shape, ctx.axes, ctx.keepdim) * (2 * (x - mean) / x.dtype.type(ctx.denominator))


class Prod(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        axes = dims(dim, x.ndim, "prod")
        if x.dtype.kind in "bi":
            x = x.astype(_dtype.int64.np)
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdim = axes, keepdim
        with be(x).errstate():  # 0 * inf is nan, silently
            return be(x).prod(x, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx._saved
        bx = be(x)
        g = keep(g, x.shape, ctx.axes, ctx.keepdim)
        if ctx.axes is None:
            return g * bx.reshape(_prod_of_others(bx.reshape(x, (-1,)), 0), x.shape)
        if not ctx.axes:
            return g
        return g * _prod_of_others(x, ctx.axes[0])


def _prod_of_others(x: Any, axis: int) -> Any:
    """For each element, the product of the other elements along `axis` (exact with zeros)."""
    bx = be(x)
    ones = bx.ones_like_axis(x, axis)
    left = bx.concatenate([ones, bx.cumprod(x, axis=axis)], axis=axis)
    right = bx.flip(bx.cumprod(bx.flip(x, axis), axis=axis), axis)
    right = bx.concatenate([right, ones], axis=axis)
    n = x.shape[axis]
    return bx.take(left, range(n), axis=axis) * bx.take(right, range(1, n + 1), axis=axis)


class MaxAll(Function):
    """max() or min() over every element: the gradient is shared among ties."""

    _raw = True

    @staticmethod
    def forward(ctx, x, largest=True):
        op = "max" if largest else "min"
        if x.size == 0:
            raise RuntimeError(f"{op}: cannot reduce an empty tensor (shape {tuple(x.shape)}) without a dim")
        out = (be(x).amax if largest else be(x).amin)(x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx._saved
        # A nan result came from the nan entries: they share the gradient (PyTorch's rule).
        hit = (x == out) | ((x != x) & (out != out))
        return g * hit / hit.sum()


class MaxDim(Function):
    """max(dim) or min(dim) given the arg indices (keepdim form): the gradient goes there."""

    _raw = True

    @staticmethod
    def forward(ctx, x, index, dim, keepdim):
        bx = be(x)
        ctx.index, ctx.dim, ctx.shape, ctx.keepdim = index, dim, x.shape, keepdim
        out = bx.take_along_axis(x, index, axis=dim)
        return out if keepdim else bx.squeeze(out, dim)

    @staticmethod
    def backward(ctx, g):
        bx = be(g)
        if not ctx.keepdim:
            g = bx.expand_dims(g, ctx.dim)
        return bx.scatter_add_along_axis(ctx.shape, ctx.index, g, ctx.dim), None, None, None


class LogSumExp(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim, keepdim=False):
        x = to_float(x)
        axes = dims(dim, x.ndim, "logsumexp")
        out = be(x).logsumexp(x, axes, keepdim)
        ctx.save_for_backward(x, out)
        ctx.axes, ctx.keepdim = axes, keepdim
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx._saved
        bx = be(x)
        out = keep(out, x.shape, ctx.axes, ctx.keepdim)
        e = bx.exp(x - out)
        # out is rounded to x's dtype, which scales every e^(x - out) by up to |out| eps (4e-4 at
        # 1e4 in float32): renormalising removes that. Rows with an infinite out keep PyTorch's
        # e^(x - out): nan at a +inf entry, 0 elsewhere.
        total = bx.where(bx.isfinite(out), bx.sum(e, axis=ctx.axes, keepdims=True), 1)
        return keep(g, x.shape, ctx.axes, ctx.keepdim) * (e / total)


class Softmax(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim, dtype=None):
        x = to_float(x) if dtype is None else x.astype(dtype.np)
        ctx.dim = dim_arg(dim, x.ndim, "softmax")
        out = be(x).softmax(x, ctx.dim)  # rows of only -inf give nan, silently, like PyTorch
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx._saved
        return out * (g - be(g).sum(g * out, axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim, dtype=None):
        x = to_float(x) if dtype is None else x.astype(dtype.np)
        ctx.dim = dim_arg(dim, x.ndim, "log_softmax")
        out = be(x).log_softmax(x, ctx.dim)  # rows of only -inf give nan, silently, like PyTorch
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx._saved
        bx = be(g)
        return g - bx.exp(out) * bx.sum(g, axis=ctx.dim, keepdims=True)


class Cumsum(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim, dtype=None):
        ctx.dim = dim_arg(dim, x.ndim, "cumsum")
        if dtype is not None:
            x = x.astype(dtype.np)
        elif x.dtype.kind in "bi":
            x = x.astype(_dtype.int64.np)
        with be(x).errstate():  # inf + -inf is nan, silently
            return be(x).cumsum(x, axis=ctx.dim) if x.ndim else x.copy()

    @staticmethod
    def backward(ctx, g):
        if g.ndim == 0:
            return g
        bx = be(g)
        return bx.flip(bx.cumsum(bx.flip(g, ctx.dim), axis=ctx.dim), ctx.dim)


def _count(shape: tuple, axes: tuple | None) -> int:
    n = 1
    for a in range(len(shape)) if axes is None else axes:
        n *= shape[a]
    return n


# ---- public functions ----
def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: _dtype.dtype | None = None) -> Tensor:
    return Sum.apply(input, dim, keepdim, dtype)


def mean(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Mean.apply(input, dim, keepdim)


def _correction(unbiased: bool | None, correction: float | None) -> float:
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: float | None = None) -> Tensor:
    return _var(input, dim, unbiased, keepdim, correction, "var")


def std(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: float | None = None) -> Tensor:
    return elementwise.sqrt(_var(input, dim, unbiased, keepdim, correction, "std"))


def _var(input: Tensor, dim: Any, unbiased: bool | None, keepdim: bool, correction: float | None, op: str) -> Tensor:
    if isinstance(dim, bool):  # var(x, False): the positional `unbiased` overload
        dim, unbiased = None, dim
    return Var.apply(input, dim, _correction(unbiased, correction), keepdim, op)


def prod(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return Prod.apply(input, dim, keepdim)


def _extreme(input: Tensor, dim: Any, keepdim: bool, largest: bool) -> Any:
    op = "max" if largest else "min"
    if isinstance(dim, Tensor):  # max(a, b) is maximum(a, b)
        return (elementwise.maximum if largest else elementwise.minimum)(input, dim)
    if dim is None:
        return MaxAll.apply(input, largest)
    x = input._data
    bx = be(x)
    if x.ndim == 0:
        dim_arg(dim, 0, op)
        return values_indices(input.clone(), Tensor._make(bx.zeros((), _dtype.int64.np)))
    d = dim_arg(dim, x.ndim, op)
    if x.shape[d] == 0:
        raise IndexError(f"{op}: cannot reduce dim {dim} of size 0 (shape {tuple(x.shape)})")
    index = (bx.argmax if largest else bx.argmin)(x, axis=d, keepdims=True)
    values = MaxDim.apply(input, index, d, keepdim)
    return values_indices(values, Tensor._make(index if keepdim else bx.squeeze(index, d)))


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    return _extreme(input, dim, keepdim, True)


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    return _extreme(input, dim, keepdim, False)


def amax(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return max(input) if dim is None else max(input, dim, keepdim).values


def amin(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return min(input) if dim is None else min(input, dim, keepdim).values


def _arg(input: Tensor, dim: int | None, keepdim: bool, largest: bool) -> Tensor:
    op = "argmax" if largest else "argmin"
    x = input._data
    bx = be(x)
    fn = bx.argmax if largest else bx.argmin
    if x.size == 0 and (dim is None or x.shape[dim_arg(dim, x.ndim, op)] == 0):
        raise RuntimeError(f"{op}: cannot reduce an empty dim (shape {tuple(x.shape)}, dim {dim})")
    if dim is None:
        out = fn(bx.reshape(x, (-1,)))
        return Tensor._make(bx.reshape(out, (1,) * x.ndim) if keepdim else out)
    if x.ndim == 0:
        dim_arg(dim, 0, op)
        return Tensor._make(bx.zeros((), _dtype.int64.np))
    return Tensor._make(fn(x, axis=dim_arg(dim, x.ndim, op), keepdims=keepdim))


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg(input, dim, keepdim, True)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg(input, dim, keepdim, False)


def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    return LogSumExp.apply(input, dim, keepdim)


def softmax(input: Tensor, dim: int, dtype: _dtype.dtype | None = None) -> Tensor:
    return Softmax.apply(input, dim, dtype)


def log_softmax(input: Tensor, dim: int, dtype: _dtype.dtype | None = None) -> Tensor:
    return LogSoftmax.apply(input, dim, dtype)


def cumsum(input: Tensor, dim: int, *, dtype: _dtype.dtype | None = None) -> Tensor:
    return Cumsum.apply(input, dim, dtype)


def all(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    x = input._data
    axes = dims(dim, x.ndim, "all")
    return Tensor._make(be(x).all(x, axis=axes, keepdims=keepdim))


def any(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    x = input._data
    axes = dims(dim, x.ndim, "any")
    return Tensor._make(be(x).any(x, axis=axes, keepdims=keepdim))


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """The k largest (or smallest) entries along dim and their indices, largest first."""
    from .indexing import gather

    x = input._data
    d = dim_arg(dim, x.ndim, "topk")
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise IndexError(f"topk: k={k} is out of range for dim {dim} of size {n}")
    bx = be(x)
    order = bx.argsort(-x if largest else x, axis=d, kind="stable") if x.ndim else bx.zeros((1,), _dtype.int64.np)
    index = bx.take(order, range(k), axis=d) if x.ndim else order[:k].reshape(())
    return topk_result(gather(input, d, Tensor._make(index)) if x.ndim else input.clone(), Tensor._make(index))
