"""Elementwise ops with broadcasting: forward and backward side by side.

Gradients may come back in the broadcast shape: the engine sums them to each input's shape.
"""
from __future__ import annotations

import math
from typing import Any

from .._tensor import Tensor
from ..autograd.function import Function
from ._util import as_operand, be, broadcast, is_array, promote, scalar, to_float


# ---- arithmetic ----
class Add(Function):
    _raw = True

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        _, (a, b) = promote("add", a, b)
        ctx.alpha = alpha
        if alpha != 1:
            b = b * alpha
        return broadcast("add", be(a if is_array(a) else b).add, a, b)

    @staticmethod
    def backward(ctx, g):
        return g, (g if ctx.alpha == 1 else g * ctx.alpha)


class Sub(Function):
    _raw = True

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        d, (a, b) = promote("sub", a, b)
        if d.name == "bool":
            raise TypeError("sub: subtraction of two bool tensors is not supported; use logical_xor")
        ctx.alpha = alpha
        if alpha != 1:
            b = b * alpha
        return broadcast("sub", be(a if is_array(a) else b).subtract, a, b)

    @staticmethod
    def backward(ctx, g):
        return g, -g if ctx.alpha == 1 else g * -ctx.alpha


class Mul(Function):
    _raw = True

    @staticmethod
    def forward(ctx, a, b):
        _, (a, b) = promote("mul", a, b)
        # Save only what backward reads: an in-place update of the other operand stays legal.
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None, a if ctx.needs_input_grad[1] else None)
        return broadcast("mul", be(a if is_array(a) else b).multiply, a, b)

    @staticmethod
    def backward(ctx, g):
        b, a = ctx._saved
        return (g * b if b is not None else None), (g * a if a is not None else None)


class Div(Function):
    _raw = True

    @staticmethod
    def forward(ctx, a, b):
        _, (a, b) = promote("div", a, b)
        a = to_float(a) if is_array(a) else float(a)
        b = to_float(b) if is_array(b) else float(b)
        out = broadcast("div", be(a if is_array(a) else b).true_divide, a, b)
        ctx.save_for_backward(b, out if ctx.needs_input_grad[1] else None)
        return out

    @staticmethod
    def backward(ctx, g):
        b, out = ctx._saved
        ga = g / b
        return ga, (-ga * out if out is not None else None)


class Pow(Function):
    _raw = True

    @staticmethod
    def forward(ctx, a, b):
        _, (a, b) = promote("pow", a, b)
        out = broadcast("pow", be(a if is_array(a) else b).power, a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx._saved
        ga = gb = None
        if ctx.needs_input_grad[0]:
            # d(a^b)/da = b * a^(b-1); written with `where` so b == 0 gives 0, not 0 * inf.
            bx = be(a)
            ga = g * bx.where(b == 0, 0.0, b * bx.power(a, b - 1))
        if ctx.needs_input_grad[1]:
            bx = be(b)
            log_a = bx.log(a) if is_array(a) else math.log(a) if a > 0 else float("nan") if a < 0 else -math.inf
            gb = g * bx.where(out == 0, 0.0, out * log_a)
        return ga, gb


class Neg(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind == "b":
            raise TypeError("neg: negation of a bool tensor is not supported; use logical_not")
        return be(x).negative(x)

    @staticmethod
    def backward(ctx, g):
        return -g


class Abs(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return be(x).absolute(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx._saved
        return g * be(x).sign(x)


# ---- unary math (integer inputs compute in the default float dtype) ----
class Exp(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        with be(x).errstate():  # overflow to inf, silently
            out = be(x).exp(to_float(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * ctx._saved[0]


class Log(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        x = to_float(x)
        ctx.save_for_backward(x)
        with be(x).errstate():  # log(0) = -inf and log(-1) = nan, silently, like PyTorch
            return be(x).log(x)

    @staticmethod
    def backward(ctx, g):
        return g / ctx._saved[0]


class Sqrt(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        x = to_float(x)
        with be(x).errstate():
            out = be(x).sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx._saved[0])


class Rsqrt(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        x = to_float(x)
        with be(x).errstate():
            out = 1 / be(x).sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx._saved[0]
        return g * -0.5 * out * out * out


class Sin(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        x = to_float(x)
        ctx.save_for_backward(x)
        with be(x).errstate():  # sin(inf) = nan, silently
            return be(x).sin(x)

    @staticmethod
    def backward(ctx, g):
        return g * be(g).cos(ctx._saved[0])


class Cos(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        x = to_float(x)
        ctx.save_for_backward(x)
        with be(x).errstate():  # cos(inf) = nan, silently
            return be(x).cos(x)

    @staticmethod
    def backward(ctx, g):
        return -g * be(g).sin(ctx._saved[0])


class Tanh(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        out = be(x).tanh(to_float(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx._saved[0]
        return g * (1 - out * out)


class Sigmoid(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        out = be(x).sigmoid(to_float(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx._saved[0]
        return g * out * (1 - out)


class Relu(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        out = be(x).maximum(x, 0).astype(x.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * (ctx._saved[0] > 0)


class Gelu(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        x = to_float(x)
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        return be(x).gelu(x, approximate)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx._saved
        return be(x).gelu_backward(g, x, ctx.approximate)


class Silu(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        x = to_float(x)
        s = be(x).sigmoid(x)
        ctx.save_for_backward(x, s)
        with be(x).errstate():  # -inf * 0 = nan, silently, like PyTorch
            return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx._saved
        return g * s * (1 + x * (1 - s))


# ---- two-input selections ----
class Maximum(Function):
    _raw = True

    @staticmethod
    def forward(ctx, a, b):
        _, (a, b) = promote("maximum", a, b)
        ctx.save_for_backward(a, b)
        return broadcast("maximum", be(a).maximum, a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx._saved
        # Ties share the gradient equally, as in PyTorch.
        share = (a > b) + 0.5 * (a == b)
        return g * share, g * (1 - share)


class Minimum(Function):
    _raw = True

    @staticmethod
    def forward(ctx, a, b):
        _, (a, b) = promote("minimum", a, b)
        ctx.save_for_backward(a, b)
        return broadcast("minimum", be(a).minimum, a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx._saved
        share = (a < b) + 0.5 * (a == b)
        return g * share, g * (1 - share)


class Clamp(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must not be None")
        for name, v in (("min", min), ("max", max)):
            if v is not None and v != v:
                raise ValueError(f"clamp: {name} must not be NaN")
        kinds = [v for v in (min, max) if v is not None]
        _, (x, *_) = promote("clamp", x, *kinds)
        ctx.save_for_backward(x)
        ctx.bounds = (min, max)
        return be(x).clip(x, min, max).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx._saved
        lo, hi = ctx.bounds
        inside = be(x).ones(x.shape, bool)
        if lo is not None:
            inside = inside & (x >= lo)
        if hi is not None:
            inside = inside & (x <= hi)
        return g * inside


class Where(Function):
    _raw = True

    @staticmethod
    def forward(ctx, cond, a, b):
        if not is_array(cond) or cond.dtype.kind != "b":
            raise TypeError(f"where: condition must be a bool tensor, got {getattr(cond, 'dtype', type(cond).__name__)}")
        _, (a, b) = promote("where", a, b)
        ctx.save_for_backward(cond)
        return broadcast("where", be(cond).where, cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx._saved
        bx = be(g)
        return None, bx.where(cond, g, 0), bx.where(cond, 0, g)


class MaskedFill(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, mask, value):
        if not is_array(mask) or mask.dtype.kind != "b":
            raise TypeError(f"masked_fill: mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
        ctx.save_for_backward(mask)
        out = broadcast("masked_fill", be(x).where, mask, value, x)
        if out.shape != x.shape:
            raise RuntimeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to the input shape {tuple(x.shape)}")
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        return be(g).where(ctx._saved[0], 0, g), None, None


# ---- public functions ----
def add(input: Tensor | float, other: Tensor | float, *, alpha: float = 1) -> Tensor:
    return Add.apply(as_operand(input, "add"), as_operand(other, "add"), alpha)


def sub(input: Tensor | float, other: Tensor | float, *, alpha: float = 1) -> Tensor:
    return Sub.apply(as_operand(input, "sub"), as_operand(other, "sub"), alpha)


def mul(input: Tensor | float, other: Tensor | float) -> Tensor:
    return Mul.apply(as_operand(input, "mul"), as_operand(other, "mul"))


def div(input: Tensor | float, other: Tensor | float) -> Tensor:
    return Div.apply(as_operand(input, "div"), as_operand(other, "div"))


def pow(input: Tensor | float, exponent: Tensor | float) -> Tensor:
    return Pow.apply(as_operand(input, "pow"), as_operand(exponent, "pow"))


def neg(input: Tensor) -> Tensor:
    return Neg.apply(input)


def abs(input: Tensor) -> Tensor:
    return Abs.apply(input)


def exp(input: Tensor) -> Tensor:
    return Exp.apply(input)


def log(input: Tensor) -> Tensor:
    return Log.apply(input)


def sqrt(input: Tensor) -> Tensor:
    return Sqrt.apply(input)


def rsqrt(input: Tensor) -> Tensor:
    return Rsqrt.apply(input)


def sin(input: Tensor) -> Tensor:
    return Sin.apply(input)


def cos(input: Tensor) -> Tensor:
    return Cos.apply(input)


def tanh(input: Tensor) -> Tensor:
    return Tanh.apply(input)


def sigmoid(input: Tensor) -> Tensor:
    return Sigmoid.apply(input)


def relu(input: Tensor) -> Tensor:
    return Relu.apply(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    return Gelu.apply(input, approximate)


def silu(input: Tensor) -> Tensor:
    return Silu.apply(input)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return Maximum.apply(input, as_operand(other, "maximum"))


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return Minimum.apply(input, as_operand(other, "minimum"))


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    lo = None if min is None else scalar(min, "clamp")
    hi = None if max is None else scalar(max, "clamp")
    return Clamp.apply(input, lo, hi)


clip = clamp


def where(condition: Tensor, input: Tensor | float, other: Tensor | float) -> Tensor:
    return Where.apply(condition, as_operand(input, "where"), as_operand(other, "where"))


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    return MaskedFill.apply(input, mask, scalar(value, "masked_fill"))


# ---- comparisons and logic: bool results, no gradient ----
def _compare(op: str, fn_name: str, a: Any, b: Any) -> Tensor:
    a, b = as_operand(a, op), as_operand(b, op)
    x = a._data if isinstance(a, Tensor) else a
    y = b._data if isinstance(b, Tensor) else b
    _, (x, y) = promote(op, x, y)
    arr = x if is_array(x) else y
    return Tensor._make(broadcast(op, getattr(be(arr), fn_name), x, y))


def eq(input: Tensor, other: Tensor | float) -> Tensor:
    return _compare("eq", "equal", input, other)


def ne(input: Tensor, other: Tensor | float) -> Tensor:
    return _compare("ne", "not_equal", input, other)


def lt(input: Tensor, other: Tensor | float) -> Tensor:
    return _compare("lt", "less", input, other)


def le(input: Tensor, other: Tensor | float) -> Tensor:
    return _compare("le", "less_equal", input, other)


def gt(input: Tensor, other: Tensor | float) -> Tensor:
    return _compare("gt", "greater", input, other)


def ge(input: Tensor, other: Tensor | float) -> Tensor:
    return _compare("ge", "greater_equal", input, other)


def logical_and(input: Tensor, other: Tensor) -> Tensor:
    return _compare("logical_and", "logical_and", input, other)


def logical_or(input: Tensor, other: Tensor) -> Tensor:
    return _compare("logical_or", "logical_or", input, other)


def logical_xor(input: Tensor, other: Tensor) -> Tensor:
    return _compare("logical_xor", "logical_xor", input, other)


def logical_not(input: Tensor) -> Tensor:
    return Tensor._make(be(input._data).logical_not(input._data))


def isfinite(input: Tensor) -> Tensor:
    return Tensor._make(be(input._data).isfinite(input._data))


def equal(input: Tensor, other: Tensor) -> bool:
    """True if both tensors have the same shape and values."""
    return input.shape == other.shape and bool(eq(input, other).all())
