"""Tensor's operators and methods: thin forwards to the ops, plus the in-place ops."""
from __future__ import annotations

import math
from typing import Any

from . import _dtype, backend, ops
from ._device import device as _device_cls
from ._tensor import Tensor
from .autograd import grad_mode
from .autograd.function import Function
from .ops import elementwise as E
from .ops import indexing, shape
from .ops._util import scalar


def _swap(fn: Any) -> Any:
    return lambda self, other: fn(other, self)


def _matmul_r(self: Tensor, other: Any) -> Tensor:
    return ops.matmul(other if isinstance(other, Tensor) else Tensor._make(other), self)


# ---- operators ----
Tensor.__add__ = lambda self, other: E.add(self, other)
Tensor.__radd__ = _swap(E.add)
Tensor.__sub__ = lambda self, other: E.sub(self, other)
Tensor.__rsub__ = _swap(E.sub)
Tensor.__mul__ = lambda self, other: E.mul(self, other)
Tensor.__rmul__ = _swap(E.mul)
Tensor.__truediv__ = lambda self, other: E.div(self, other)
Tensor.__rtruediv__ = _swap(E.div)
Tensor.__pow__ = lambda self, other: E.pow(self, other)
Tensor.__rpow__ = _swap(E.pow)
Tensor.__matmul__ = ops.matmul
Tensor.__rmatmul__ = _matmul_r
Tensor.__neg__ = E.neg
Tensor.__abs__ = E.abs
Tensor.__eq__ = E.eq  # type: ignore[assignment]
Tensor.__ne__ = E.ne  # type: ignore[assignment]
Tensor.__lt__ = E.lt
Tensor.__le__ = E.le
Tensor.__gt__ = E.gt
Tensor.__ge__ = E.ge


def _bool_only(op: str, fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        for v in (self, other):
            if isinstance(v, Tensor) and v.dtype is not _dtype.bool_:
                raise TypeError(f"{op}: pyzen supports {op} on bool tensors only, got {v.dtype!r}")
        return fn(self, other)

    return method


Tensor.__and__ = Tensor.__rand__ = _bool_only("and", E.logical_and)
Tensor.__or__ = Tensor.__ror__ = _bool_only("or", E.logical_or)
Tensor.__xor__ = Tensor.__rxor__ = _bool_only("xor", E.logical_xor)


def _invert(self: Tensor) -> Tensor:
    if self.dtype is not _dtype.bool_:
        raise TypeError(f"invert: pyzen supports ~ on bool tensors only, got {self.dtype!r}")
    return E.logical_not(self)


Tensor.__invert__ = _invert
Tensor.__getitem__ = indexing.getitem

# ---- methods that are the ops ----
for _name in [
    "add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos",
    "tanh", "sigmoid", "relu", "maximum", "minimum", "clamp", "clip", "masked_fill", "eq", "ne",
    "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor", "isfinite",
    "equal", "sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin",
    "prod", "logsumexp", "softmax", "log_softmax", "cumsum", "all", "any", "reshape", "view",
    "flatten", "unflatten", "transpose", "swapaxes", "permute", "squeeze", "unsqueeze", "expand",
    "expand_as", "broadcast_to", "repeat", "split", "chunk", "unbind", "flip", "tril", "triu",
    "narrow", "gather", "index_select", "matmul", "mm", "bmm", "clone", "contiguous", "t", "topk",
]:
    setattr(Tensor, _name, getattr(ops, _name))

Tensor.subtract = Tensor.sub
Tensor.multiply = Tensor.mul
Tensor.divide = Tensor.div
Tensor.T = property(lambda self: shape.permute(self, tuple(range(self.ndim - 1, -1, -1))))
Tensor.mT = property(lambda self: shape.transpose(self, -2, -1))
Tensor.view_as = lambda self, other: shape.view(self, tuple(other.shape))
Tensor.reshape_as = lambda self, other: shape.reshape(self, tuple(other.shape))


# ---- dtype and device ----
class _ToDevice(Function):
    """A copy to another device's backend; the gradient is copied back."""

    _raw = True

    @staticmethod
    def forward(ctx, x, target):
        ctx.source = backend.of(x)
        return _transfer(x, target)

    @staticmethod
    def backward(ctx, g):
        return _transfer(g, ctx.source), None


def _transfer(x: Any, target: Any) -> Any:
    """x copied into `target` backend's memory (through a host NumPy array)."""
    host = backend.of(x).to_numpy(x)
    return backend.cpu.copy(host) if target is backend.cpu else target.asarray(host)


def _to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """`to(dtype)`, `to(device)`, `to(device, dtype)` or `to(other)`: self when nothing changes."""
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, _dtype.dtype):
            dtype = a
        elif isinstance(a, (str, _device_cls)):
            device = a
        elif isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        else:
            raise TypeError(f"to: expected a dtype, a device or a Tensor, got {a!r}")
    out = self
    if device is not None and _device_cls(device).type != self.device.type:
        out = _ToDevice.apply(self, backend.for_device(_device_cls(device)))
    if dtype is not None and dtype is not self.dtype:
        if self._requires_grad and not dtype.is_floating_point and grad_mode.is_grad_enabled():
            out = Tensor._make(out._data.astype(dtype.np))  # no gradient flows into integers
        else:
            out = shape.Cast.apply(out, dtype)
    if copy and out is self:
        out = self.clone()
    return out


Tensor.to = _to
Tensor.float = lambda self: _to(self, _dtype.float32)
Tensor.double = lambda self: _to(self, _dtype.float64)
Tensor.long = lambda self: _to(self, _dtype.int64)
Tensor.bool = lambda self: _to(self, _dtype.bool_)
Tensor.type_as = lambda self, other: _to(self, other.dtype)
Tensor.cpu = lambda self: _to(self, "cpu")
Tensor.cuda = lambda self, device=None: _to(self, "cuda" if device is None else f"cuda:{device}")


def _new(fn: Any) -> Any:
    def method(self: Tensor, *args: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return fn(*args, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    return method


def _install_new() -> None:
    from . import creation

    Tensor.new_zeros = _new(creation.zeros)
    Tensor.new_ones = _new(creation.ones)
    Tensor.new_empty = _new(creation.empty)
    Tensor.new_full = _new(creation.full)
    Tensor.new_tensor = lambda self, data, dtype=None, requires_grad=False: creation.tensor(data, dtype or self.dtype, requires_grad=requires_grad)


_install_new()


def _data_get(self: Tensor) -> Tensor:
    return self.detach()


def _data_set(self: Tensor, value: Tensor) -> None:
    self._data = value._data


Tensor.data = property(_data_get, _data_set)


# ---- in-place ops ----
def _write(self: Tensor, op: str, result: Any) -> None:
    """Write `result` (an array of self's shape) into self's memory and bump its version."""
    dst = self._data
    if result.dtype != dst.dtype:
        if _dtype._FROM_NP[result.dtype]._kind > self.dtype._kind:
            raise RuntimeError(f"{op}: result type {_dtype._FROM_NP[result.dtype]!r} can't be cast to the tensor's type {self.dtype!r}")
        result = result.astype(dst.dtype)
    if result.shape != dst.shape:
        raise RuntimeError(f"{op}: output with shape {tuple(dst.shape)} doesn't match the broadcast shape {tuple(result.shape)}")
    be = backend.of(dst)
    try:
        be.setitem(dst, Ellipsis, result)
    except ValueError:
        raise RuntimeError(f"{op}: this tensor is read-only (an expanded view or a read-only NumPy array); clone() it first") from None
    self._vc[0] += 1


def _check_inplace(self: Tensor, op: str, others: tuple) -> bool:
    """Whether the in-place op must be recorded; raises where PyTorch would."""
    if not grad_mode.is_grad_enabled():
        return False
    record = self._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)
    if record and self.grad_fn is None and self._requires_grad:
        raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place operation")
    if record and self._base is not None and (self._base._requires_grad or self._base.grad_fn is not None):
        raise RuntimeError(
            f"{op}: in-place operations on a view of a tensor that requires grad are not supported; use the out-of-place op"
        )
    return record


def _inplace(op: str, fn: Any) -> Any:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if _check_inplace(self, op, args):
            result = fn(self, *args, **kwargs)
            _write(self, op, result._data)
            self.grad_fn, self._output_nr, self._requires_grad = result.grad_fn, result._output_nr, True
        else:
            with grad_mode.no_grad():
                result = fn(self, *args, **kwargs)
            _write(self, op, result._data)
        return self

    method.__name__ = op
    return method


for _name in ["add", "sub", "mul", "div", "pow", "clamp", "masked_fill", "exp", "log", "sqrt", "neg", "abs", "relu", "sigmoid", "tanh"]:
    setattr(Tensor, _name + "_", _inplace(_name + "_", getattr(ops, _name)))
Tensor.clip_ = Tensor.clamp_
Tensor.__iadd__ = Tensor.add_
Tensor.__isub__ = Tensor.sub_
Tensor.__imul__ = Tensor.mul_
Tensor.__itruediv__ = Tensor.div_
def _copy_source(self: Tensor, src: Any) -> Tensor:
    """`src` broadcast to self's shape: the value copy_ writes (no gradient to self's old value)."""
    src = src if isinstance(src, Tensor) else Tensor._make(backend.of(self._data).asarray(src))
    target = tuple(self.shape)
    lead = len(target) - src.ndim
    if lead < 0 or any(s not in (1, t) for s, t in zip(src.shape, target[lead:])):
        raise RuntimeError(f"copy_: source of shape {tuple(src.shape)} cannot be broadcast to the destination shape {target}")
    return shape.expand(src, target)


Tensor.copy_ = _inplace("copy_", _copy_source)


def _fill(self: Tensor, value: Any) -> Tensor:
    value = scalar(value, "fill_")
    _check_inplace(self, "fill_", ())
    be = backend.of(self._data)
    _write(self, "fill_", be.full(self._data.shape, value, self._data.dtype))
    return self


Tensor.fill_ = _fill
Tensor.zero_ = lambda self: _fill(self, 0)


def _random_(op: str, sample: Any) -> Any:
    def method(self: Tensor, a: float, b: float) -> Tensor:
        a, b = float(scalar(a, op)), float(scalar(b, op))
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"{op}: parameters must be finite, got {a} and {b}")
        if not self.is_floating_point():
            raise TypeError(f"{op}: expected a floating point tensor, got {self.dtype!r}")
        _check_inplace(self, op, ())
        be = backend.of(self._data)
        _write(self, op, sample(be, self._data.shape, self._data.dtype, a, b))
        return self

    method.__name__ = op
    return method


def _normal_sample(be: Any, shape: tuple, dtype: Any, mean: float, std: float) -> Any:
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    return (be.randn(shape, dtype) * std + mean).astype(dtype, copy=False)


def _uniform_sample(be: Any, shape: tuple, dtype: Any, low: float, high: float) -> Any:
    if low > high:
        raise ValueError(f"uniform_: expected from <= to, got from={low} > to={high}")
    return (be.rand(shape, dtype) * (high - low) + low).astype(dtype, copy=False)


_normal = _random_("normal_", _normal_sample)
_uniform = _random_("uniform_", _uniform_sample)
Tensor.normal_ = lambda self, mean=0.0, std=1.0: _normal(self, mean, std)
Tensor.uniform_ = lambda self, a=0.0, b=1.0, **kw: _uniform(self, kw.get("from", a), kw.get("to", b))


def _setitem(self: Tensor, index: Any, value: Any) -> None:
    if _check_inplace(self, "setitem", (value,)):
        result = indexing.index_put(self, index, value)
        _write(self, "setitem", result._data)
        self.grad_fn, self._output_nr, self._requires_grad = result.grad_fn, 0, True
        return
    idx, _ = indexing.convert_index(index)
    if isinstance(value, Tensor):
        value = value._data
    be = backend.of(self._data)
    try:
        be.setitem(self._data, idx, value)
    except IndexError as e:
        raise IndexError(f"setitem: {e} (tensor shape {tuple(self.shape)})") from None
    except ValueError as e:
        raise RuntimeError(f"setitem: cannot assign a value of shape {tuple(getattr(value, 'shape', ()))}: {e}") from None
    self._vc[0] += 1


Tensor.__setitem__ = _setitem
