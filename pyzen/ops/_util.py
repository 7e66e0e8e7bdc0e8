"""Helpers the op files share: dtype promotion, dim normalisation, broadcast errors."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import _dtype, amp, backend
from .._tensor import Tensor, _dim

SCALARS = (bool, int, float)


def is_array(v: Any) -> bool:
    return not isinstance(v, SCALARS)


def scalar(v: Any, op: str) -> Any:
    """A Python number from a number-like argument (NumPy scalars and 1-element tensors included)."""
    if isinstance(v, SCALARS):
        return v
    if isinstance(v, (np.generic, Tensor)):
        return v.item()
    raise TypeError(f"{op}: expected a number, got {type(v).__name__}")


def as_operand(v: Any, op: str) -> Any:
    """Tensor arguments stay Tensors; numbers become Python scalars."""
    if isinstance(v, Tensor) or isinstance(v, SCALARS):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return Tensor._make(v)
    raise TypeError(f"{op}: expected a Tensor or a number, got {type(v).__name__}")


def promote(op: str, *vals: Any) -> tuple[_dtype.dtype, list]:
    """Cast array operands to their PyTorch result dtype; Python scalars stay scalars."""
    if len(vals) == 2:  # fast paths: nothing to cast
        a, b = vals
        a_scalar, b_scalar = isinstance(a, SCALARS), isinstance(b, SCALARS)
        if not a_scalar and not b_scalar and a.dtype == b.dtype:
            return _dtype._FROM_NP[a.dtype], list(vals)
        if a_scalar != b_scalar:
            arr, num = (b, a) if a_scalar else (a, b)
            d = _dtype._FROM_NP[arr.dtype]
            if _dtype.scalar_kind(num) <= d._kind:
                return d, list(vals)
    dims, zero, kinds = [], [], []
    for v in vals:
        if isinstance(v, SCALARS):
            kinds.append(_dtype.scalar_kind(v))
        else:
            (dims if v.ndim else zero).append(_dtype._FROM_NP[v.dtype])
    d = _dtype.promote(dims, zero, kinds)
    return d, [v.astype(d.np) if not isinstance(v, SCALARS) and v.dtype != d.np else v for v in vals]


def to_float(x: Any) -> Any:
    """Integer and bool inputs of floating ops compute in the default float dtype, like PyTorch."""
    if x.dtype.kind == "f":
        return x
    return x.astype(_dtype.get_default_dtype().np)


def shape_of(v: Any) -> tuple:
    return () if isinstance(v, SCALARS) else tuple(v.shape)


def broadcast(op: str, fn: Callable, *vals: Any) -> Any:
    """Apply an elementwise backend function, turning a broadcast failure into a clear error.
    inf and nan results (x / 0, 0 * inf, overflow) come silently, as in PyTorch."""
    try:
        with be(next(v for v in vals if is_array(v))).errstate():
            return fn(*vals)
    except ValueError:
        shapes = " and ".join(str(shape_of(v)) for v in vals)
        raise RuntimeError(f"{op}: shapes {shapes} cannot be broadcast together") from None


def dims(dim: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    """Normalise `dim` (None, an int or a sequence of ints) to a sorted tuple, or None for all."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        out = tuple(sorted(_dim(d, ndim, op) for d in dim))
        if len(set(out)) != len(out):
            raise RuntimeError(f"{op}: dim {tuple(dim)} appears more than once in the list of dims")
        if ndim == 0:
            return ()
        return out
    d = _dim(dim, ndim, op)
    return () if ndim == 0 else (d,)


def keep(g: Any, shape: tuple, axes: tuple[int, ...] | None, keepdim: bool) -> Any:
    """Re-insert reduced axes into a gradient so it broadcasts against the input shape."""
    if keepdim or not shape:
        return g
    if axes is None:
        return g.reshape((1,) * len(shape))
    out_shape = list(shape)
    for a in axes:
        out_shape[a] = 1
    return g.reshape(out_shape)


def be(x: Any) -> Any:
    return backend.of(x)


def dim_arg(dim: Any, ndim: int, op: str) -> int:
    return _dim(dim, ndim, op)


def check_index(index: Any, op: str) -> Any:
    """An integer index array (from an int64 tensor or a list of ints); TypeError otherwise."""
    if isinstance(index, Tensor):
        index = index._data
    elif isinstance(index, (list, tuple, int, np.integer)):
        index = np.asarray(index)
    if not hasattr(index, "dtype") or index.dtype.kind not in "iu":
        kind = getattr(index, "dtype", type(index).__name__)
        raise TypeError(f"{op}: index must be an integer (int64) tensor, got {kind}")
    return index


def autocast_bf16(t: Tensor) -> bool:
    """Whether an op on float32 `t` computes in bfloat16: inside pyzen.autocast(dtype=pyzen.bfloat16)
    for t's device type."""
    return t.dtype is _dtype.float32 and amp.get_autocast_dtype(t.device.type) is _dtype.bfloat16


def first_out_of_range(index: Any, size: int, ignore: int | None = None) -> int | None:
    """The first value of an integer index array outside [0, size) (values equal to `ignore`
    aside), or None: one read back to the host (one device sync on CUDA)."""
    bad = (index < 0) | (index >= size)
    if ignore is not None:
        bad = bad & (index != ignore)
    if not bool(bad.any()):
        return None
    return int(index[bad].reshape(-1)[0])  # the error path


def check_bounds(index: Any, size: int, op: str, dim: int) -> None:
    bad = first_out_of_range(index, size) if index.size else None
    if bad is not None:
        raise IndexError(f"{op}: index {bad} is out of bounds for dim {dim} with size {size}")
