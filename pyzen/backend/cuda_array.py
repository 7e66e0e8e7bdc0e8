"""`CudaArray`: the CUDA backend's array, a NumPy-like view of a `pyzen._cuda.Array`.

The layers above the backend treat arrays as NumPy arrays (shape, dtype, operators,
reshape, indexing, reductions); CudaArray offers that surface on device memory. Views
(reshape, transpose, slicing, broadcasting, flip) share the device buffer and cost no
kernel; everything else launches one of the generic kernels in cuda/. dtype promotion
follows NumPy (np.result_type), so both backends give the same dtypes.

Nothing here copies to the host implicitly: `np.asarray(cuda_array)` raises, and the
only device-to-host copies are `to_numpy`, `item`, `bool()` and boolean-mask indexing
(which needs the number of True entries, as in PyTorch).
"""
from __future__ import annotations

import builtins
import math
from typing import Any, Sequence

import numpy as np

from .. import _cuda

_BOOL = np.dtype(bool)
_INT64 = np.dtype(np.int64)
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class CudaArray:
    __slots__ = ("_a", "shape", "dtype", "__weakref__")
    __array_ufunc__ = None  # NumPy operators on (ndarray or NumPy scalar, CudaArray) defer to ours
    __hash__ = None  # like ndarray: `==` is elementwise

    def __init__(self, a: Any) -> None:
        self._a = a
        self.shape = tuple(a.shape)
        self.dtype = _np_dtype(a.dtype)

    # ---- attributes ----
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def T(self) -> "CudaArray":
        return transpose(self)

    def __repr__(self) -> str:
        return f"CudaArray(shape={self.shape}, dtype={self.dtype})"

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError("a CUDA array cannot be converted to NumPy implicitly; call .cpu() or .numpy() on the tensor")

    # ---- host values (each synchronises) ----
    def item(self) -> Any:
        if self.size != 1:
            raise ValueError(f"item: can only convert an array of size 1, got shape {self.shape}")
        return to_numpy(self).item()

    def tolist(self) -> Any:
        return to_numpy(self).tolist()

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(f"the truth value of an array with {self.size} elements is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iub":
            raise TypeError("only integer arrays of one element can be converted to an index")
        return int(self.item())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    # ---- NumPy-style methods ----
    def astype(self, dtype: Any, copy: bool = True) -> "CudaArray":
        return astype(self, dtype, copy)

    def copy(self) -> "CudaArray":
        return copy(self)

    def reshape(self, *shape: Any) -> "CudaArray":
        return reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    def ravel(self) -> "CudaArray":
        return reshape(self, (-1,))

    def transpose(self, *axes: Any) -> "CudaArray":
        return transpose(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else (axes or None))

    def squeeze(self, axis: Any = None) -> "CudaArray":
        return squeeze(self, axis)

    def sum(self, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> "CudaArray":
        return sum(self, axis=axis, keepdims=keepdims, dtype=dtype)

    def mean(self, axis: Any = None, keepdims: bool = False) -> "CudaArray":
        return mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> "CudaArray":
        return amax(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> "CudaArray":
        return amin(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis: Any = None, keepdims: bool = False) -> "CudaArray":
        return argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis: Any = None, keepdims: bool = False) -> "CudaArray":
        return argmin(self, axis=axis, keepdims=keepdims)

    def all(self, axis: Any = None, keepdims: bool = False) -> "CudaArray":
        return all(self, axis=axis, keepdims=keepdims)

    def any(self, axis: Any = None, keepdims: bool = False) -> "CudaArray":
        return any(self, axis=axis, keepdims=keepdims)

    def __getitem__(self, index: Any) -> "CudaArray":
        return getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        setitem(self, index, value)

    # ---- operators ----
    def __add__(self, o): return binary("add", self, o)
    def __radd__(self, o): return binary("add", o, self)
    def __sub__(self, o): return binary("subtract", self, o)
    def __rsub__(self, o): return binary("subtract", o, self)
    def __mul__(self, o): return binary("multiply", self, o)
    def __rmul__(self, o): return binary("multiply", o, self)
    def __truediv__(self, o): return true_divide(self, o)
    def __rtruediv__(self, o): return true_divide(o, self)
    def __pow__(self, o): return binary("power", self, o)
    def __rpow__(self, o): return binary("power", o, self)
    def __eq__(self, o): return binary("equal", self, o)
    def __ne__(self, o): return binary("not_equal", self, o)
    def __lt__(self, o): return binary("less", self, o)
    def __le__(self, o): return binary("less_equal", self, o)
    def __gt__(self, o): return binary("greater", self, o)
    def __ge__(self, o): return binary("greater_equal", self, o)
    def __and__(self, o): return _logical("logical_and", self, o)
    def __rand__(self, o): return _logical("logical_and", o, self)
    def __or__(self, o): return _logical("logical_or", self, o)
    def __ror__(self, o): return _logical("logical_or", o, self)
    def __xor__(self, o): return _logical("logical_xor", self, o)
    def __rxor__(self, o): return _logical("logical_xor", o, self)
    def __neg__(self): return unary("negative", self)
    def __abs__(self): return unary("absolute", self)
    def __matmul__(self, o): return matmul(self, o)

    def __invert__(self):
        if self.dtype != _BOOL:
            raise TypeError(f"~ (bitwise not) on CUDA is supported for bool arrays only, got {self.dtype}")
        return unary("logical_not", self)

    def __iadd__(self, o): return _inplace(self, binary("add", self, o))
    def __isub__(self, o): return _inplace(self, binary("subtract", self, o))
    def __imul__(self, o): return _inplace(self, binary("multiply", self, o))
    def __itruediv__(self, o): return _inplace(self, true_divide(self, o))


# ---- creation and transfer ----
def _wrap(a: Any) -> CudaArray:
    return CudaArray(a)


def _shape(shape: Any) -> tuple:
    if type(shape) is tuple:  # the common case, from another array's shape: taken as it is
        return shape
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(map(int, shape))


# dtype conversions by dictionary: np.dtype(...) and dtype.name cost microseconds, and every
# array of every op goes through them.
_dtype_names: dict = {}
_np_dtypes: dict = {}


def _dtype_name(dtype: Any) -> str:
    name = _dtype_names.get(dtype)
    if name is None:
        name = _dtype_names[dtype] = np.dtype(dtype).name
    return name


def _np_dtype(name: str) -> np.dtype:
    d = _np_dtypes.get(name)
    if d is None:
        d = _np_dtypes[name] = np.dtype(name)
    return d


def empty(shape: Any, dtype: Any = np.float32) -> CudaArray:
    return _wrap(_cuda.empty(_shape(shape), _dtype_name(dtype)))


def full(shape: Any, fill_value: Any, dtype: Any = None) -> CudaArray:
    if dtype is None:
        dtype = _dtype_of(fill_value)
    out = empty(shape, dtype)
    _cuda.fill(out._a, _host_value(fill_value, out.dtype))
    return out


def zeros(shape: Any, dtype: Any = np.float32) -> CudaArray:
    return full(shape, 0, dtype)


def ones(shape: Any, dtype: Any = np.float32) -> CudaArray:
    return full(shape, 1, dtype)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None) -> CudaArray:
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        dtype = np.result_type(start, stop, step)
    out = empty((max(math.ceil((stop - start) / step), 0),), dtype)
    _cuda.iota(out._a, float(start), float(step))
    return out


def from_numpy(x: np.ndarray) -> CudaArray:
    return _wrap(_cuda.from_numpy(np.asarray(x, order="C")))


def to_numpy(x: CudaArray) -> np.ndarray:
    return _cuda.to_numpy(x._a)


def asarray(data: Any, dtype: Any = None) -> CudaArray:
    """A device array from a CudaArray (cast if asked), or a copy of host data."""
    if isinstance(data, CudaArray):
        return data if dtype is None else astype(data, dtype, False)
    return from_numpy(np.asarray(data, dtype=dtype))


def _host_value(v: Any, dtype: np.dtype) -> Any:
    if isinstance(v, CudaArray):
        v = v.item()
    if dtype.kind == "f":
        return float(v)
    if dtype.kind == "b":
        return bool(v)
    return int(v)


def _dtype_of(v: Any) -> np.dtype:
    """The NumPy dtype a scalar or array operand has on its own."""
    if isinstance(v, (CudaArray, np.ndarray, np.generic)):
        return v.dtype
    return np.result_type(v)


# The 0-d device arrays that numbers become as operands, by (kernel module, dtype, value):
# a training step uses the same few constants (2, 0.5, -inf, a scale) every time, and each
# new one would cost an allocation and a fill launch. Operands are only ever read.
_scalars: dict = {}
_MAX_SCALARS = 1024


def _scalar(v: Any, dtype: np.dtype) -> CudaArray:
    key = (id(_cuda), dtype.str, np.asarray(v, dtype).tobytes())
    a = _scalars.get(key)
    if a is None:
        if len(_scalars) >= _MAX_SCALARS:
            _scalars.clear()
        a = _scalars[key] = full((), v, dtype)
    return a


def _operand(v: Any, dtype: np.dtype) -> CudaArray:
    """`v` as a device array of `dtype` to read from: arrays are cast, numbers become 0-d
    arrays (cached)."""
    if isinstance(v, CudaArray):
        return v if v.dtype == dtype else astype(v, dtype)
    if isinstance(v, np.ndarray) and v.ndim:
        return from_numpy(v.astype(dtype, copy=False))
    return _scalar(v.item() if isinstance(v, (np.ndarray, np.generic)) else v, dtype)


def _result_type(*vals: Any) -> np.dtype:
    """NumPy's promotion: Python numbers are weak (NEP 50), arrays and NumPy scalars strong."""
    return np.result_type(*[v.dtype if isinstance(v, (CudaArray, np.ndarray)) else v for v in vals])


def astype(x: CudaArray, dtype: Any, copy: bool = True) -> CudaArray:
    dtype = np.dtype(dtype)
    if dtype == x.dtype and not copy:
        return x
    out = empty(x.shape, dtype)
    _cuda.copy(out._a, x._a)
    return out


def copy(x: CudaArray) -> CudaArray:
    return astype(x, x.dtype, True)


def contiguous(x: CudaArray) -> CudaArray:
    return x if x._a.is_contiguous() else copy(x)


def is_contiguous(x: CudaArray) -> bool:
    return x._a.is_contiguous()


def may_share_memory(a: Any, b: Any) -> bool:
    return isinstance(a, CudaArray) and isinstance(b, CudaArray) and a._a.buffer_id == b._a.buffer_id


def _inplace(x: CudaArray, result: CudaArray) -> CudaArray:
    """Write `result` (a fresh array) into x's elements, like NumPy's `x += ...`."""
    _cuda.copy(x._a, broadcast_to(result, x.shape)._a)
    return x


# ---- views ----
def _view(x: CudaArray, shape: Sequence[int], strides: Sequence[int], offset: int) -> CudaArray:
    return CudaArray(x._a.view(shape, strides, offset))


def _contiguous_strides(shape: Sequence[int]) -> list:
    strides, n = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = n
        n *= shape[d]
    return strides


def _view_strides(shape: Sequence[int], strides: Sequence[int], new_shape: Sequence[int]) -> list | None:
    """Strides that show the same elements in `new_shape` without copying, or None (NumPy's
    rule: each group of old dims that merges into new dims must be contiguous in itself)."""
    old = [(s, st) for s, st in zip(shape, strides) if s != 1]
    out = [0] * len(new_shape)
    oi = ni = 0
    while ni < len(new_shape) and oi < len(old):
        oj, nj = oi + 1, ni + 1
        np_, op_ = new_shape[ni], old[oi][0]
        while np_ != op_:
            if np_ < op_:
                np_ *= new_shape[nj]
                nj += 1
            else:
                op_ *= old[oj][0]
                oj += 1
        for k in range(oi, oj - 1):
            if old[k][1] != old[k + 1][0] * old[k + 1][1]:
                return None
        out[nj - 1] = old[oj - 1][1]
        for k in range(nj - 1, ni, -1):
            out[k - 1] = out[k] * new_shape[k]
        oi, ni = oj, nj
    return out


def reshape(x: CudaArray, shape: Any) -> CudaArray:
    shape = list(_shape(shape))
    n = x.size
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or n % known:
            raise ValueError(f"cannot reshape array of size {n} into shape {tuple(shape)}")
        shape[shape.index(-1)] = n // known
    if math.prod(shape) != n:
        raise ValueError(f"cannot reshape array of size {n} into shape {tuple(shape)}")
    if n == 0:
        return _view(x, shape, _contiguous_strides(shape), x._a.offset)
    strides = _view_strides(x.shape, x._a.strides, shape)
    if strides is None:
        x = copy(x)
        strides = _contiguous_strides(shape)
    return _view(x, shape, strides, x._a.offset)


def _axis(a: int, ndim: int) -> int:
    if not -ndim <= a < max(ndim, 1):
        raise np.exceptions.AxisError(f"axis {a} is out of bounds for array of dimension {ndim}")
    return a % max(ndim, 1)


def transpose(x: CudaArray, axes: Any = None) -> CudaArray:
    axes = tuple(range(x.ndim - 1, -1, -1)) if axes is None else tuple(_axis(a, x.ndim) for a in axes)
    st = x._a.strides
    return _view(x, [x.shape[a] for a in axes], [st[a] for a in axes], x._a.offset)


def swapaxes(x: CudaArray, a: int, b: int) -> CudaArray:
    order = list(range(x.ndim))
    a, b = _axis(a, x.ndim), _axis(b, x.ndim)
    order[a], order[b] = order[b], order[a]
    return transpose(x, order)


def broadcast_to(x: CudaArray, shape: Any) -> CudaArray:
    shape = _shape(shape)
    if x.shape == shape:
        return x
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"cannot broadcast shape {x.shape} to {shape}")
    strides = [0] * lead
    for d, (s, st) in enumerate(zip(x.shape, x._a.strides)):
        if s == shape[lead + d]:
            strides.append(st)
        elif s == 1:
            strides.append(0)
        else:
            raise ValueError(f"cannot broadcast shape {x.shape} to {shape}")
    return _view(x, shape, strides, x._a.offset)


def expand_dims(x: CudaArray, axis: Any) -> CudaArray:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = x.ndim + len(axes)
    axes = sorted(_axis(a, nd) for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, shape)


def squeeze(x: CudaArray, axis: Any = None) -> CudaArray:
    if axis is None:
        axes = {d for d, s in enumerate(x.shape) if s == 1}
    else:
        axes = {_axis(a, x.ndim) for a in ((axis,) if isinstance(axis, int) else axis)}
        if builtins.any(x.shape[a] != 1 for a in axes):
            raise ValueError(f"cannot select an axis to squeeze out which has size not equal to one (shape {x.shape})")
    keep = [d for d in range(x.ndim) if d not in axes]
    return _view(x, [x.shape[d] for d in keep], [x._a.strides[d] for d in keep], x._a.offset)


def flip(x: CudaArray, axis: Any = None) -> CudaArray:
    axes = range(x.ndim) if axis is None else [_axis(a, x.ndim) for a in ((axis,) if isinstance(axis, int) else axis)]
    strides, offset = list(x._a.strides), x._a.offset
    for a in axes:
        if x.shape[a] > 1:
            offset += (x.shape[a] - 1) * strides[a]
            strides[a] = -strides[a]
    return _view(x, x.shape, strides, offset)


# ---- elementwise ----
def unary(name: str, x: CudaArray) -> CudaArray:
    if name not in ("negative", "absolute", "sign", "logical_not", "isfinite") and x.dtype not in _FLOATS:
        x = astype(x, np.float64)  # NumPy computes math on integers in float64
    out = empty(x.shape, _BOOL if name in ("logical_not", "isfinite") else x.dtype)
    _cuda.unary(name, out._a, x._a)
    return out


def binary(name: str, a: Any, b: Any) -> CudaArray:
    dtype = _result_type(a, b)
    shape = np.broadcast_shapes(_shape_of(a), _shape_of(b))
    x, y = broadcast_to(_operand(a, dtype), shape), broadcast_to(_operand(b, dtype), shape)
    compare = name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
    out = empty(shape, _BOOL if compare else dtype)
    _cuda.binary(name, out._a, x._a, y._a)
    return out


def _logical(name: str, a: Any, b: Any) -> CudaArray:
    for v in (a, b):
        if _dtype_of(v) != _BOOL:
            raise TypeError(f"&, | and ^ on CUDA are supported for bool arrays only, got {_dtype_of(v)}")
    return binary(name, a, b)


def true_divide(a: Any, b: Any) -> CudaArray:
    dtype = _result_type(a, b)
    if dtype not in _FLOATS:
        dtype = np.dtype(np.float64)  # NumPy divides integers in float64
    return binary("true_divide", _operand(a, dtype) if isinstance(a, CudaArray) else a,
                  _operand(b, dtype) if isinstance(b, CudaArray) else b)


def _shape_of(v: Any) -> tuple:
    return tuple(v.shape) if isinstance(v, (CudaArray, np.ndarray)) else ()


def where(cond: Any, a: Any, b: Any) -> CudaArray:
    dtype = _result_type(a, b)
    shape = np.broadcast_shapes(_shape_of(cond), _shape_of(a), _shape_of(b))
    c = broadcast_to(_operand(cond, _BOOL), shape)
    x, y = broadcast_to(_operand(a, dtype), shape), broadcast_to(_operand(b, dtype), shape)
    out = empty(shape, dtype)
    _cuda.where(out._a, c._a, x._a, y._a)
    return out


# ---- reductions (deterministic order) ----
def _axes(axis: Any, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted({_axis(int(a), ndim) for a in axes}))


def _reduce(name: str, x: CudaArray, axis: Any, keepdims: bool, out_dtype: np.dtype) -> CudaArray:
    axes = _axes(axis, x.ndim)
    kept = [d for d in range(x.ndim) if d not in axes]
    moved = transpose(x, kept + list(axes))
    out = empty([x.shape[d] for d in kept], out_dtype)
    _cuda.reduce(name, out._a, moved._a, len(axes))
    if keepdims:
        out = reshape(out, [1 if d in axes else s for d, s in enumerate(x.shape)])
    return out


def sum(x: CudaArray, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> CudaArray:
    if dtype is not None:
        x = astype(x, dtype, False)
    elif x.dtype.kind in "bi":
        x = astype(x, _INT64, False)  # NumPy sums integers and bools in int64
    return _reduce("sum", x, axis, keepdims, x.dtype)


def prod(x: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    if x.dtype.kind in "bi":
        x = astype(x, _INT64, False)
    return _reduce("prod", x, axis, keepdims, x.dtype)


def mean(x: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    if x.dtype not in _FLOATS:
        x = astype(x, np.float64)
    n = math.prod(x.shape[a] for a in _axes(axis, x.ndim))
    return sum(x, axis, keepdims) / x.dtype.type(n)


def _check_nonempty(x: CudaArray, axis: Any, op: str) -> None:
    if builtins.any(x.shape[a] == 0 for a in _axes(axis, x.ndim)) or (axis is None and x.size == 0):
        raise ValueError(f"{op}: zero-size array to reduction operation (shape {x.shape}, axis {axis})")


def amax(x: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    _check_nonempty(x, axis, "max")
    return _reduce("max", x, axis, keepdims, x.dtype)


def amin(x: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    _check_nonempty(x, axis, "min")
    return _reduce("min", x, axis, keepdims, x.dtype)


def _arg(name: str, x: CudaArray, axis: Any, keepdims: bool) -> CudaArray:
    _check_nonempty(x, axis, name)
    if axis is None:  # the index into the flattened array, as NumPy
        out = _reduce(name, reshape(x, (-1,)), 0, False, _INT64)
        return reshape(out, (1,) * x.ndim) if keepdims else out
    return _reduce(name, x, int(axis), keepdims, _INT64)


def argmax(x: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    return _arg("argmax", x, axis, keepdims)


def argmin(x: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    return _arg("argmin", x, axis, keepdims)


def all(x: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    return _reduce("min", astype(x, _BOOL, False), axis, keepdims, _BOOL)


def any(x: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    return _reduce("max", astype(x, _BOOL, False), axis, keepdims, _BOOL)


def _along_last(fn: Any, x: CudaArray, axis: int, *args: Any) -> CudaArray:
    """Run fn(out, x_last, *args) with `axis` moved last (x made contiguous as fn needs), and
    return the result in x's axis order."""
    axis = _axis(axis, x.ndim)
    order = [d for d in range(x.ndim) if d != axis] + [axis]
    moved = transpose(x, order)
    out = empty(moved.shape, x.dtype)
    fn(out._a, moved._a, *args)
    inverse = [0] * x.ndim
    for i, d in enumerate(order):
        inverse[d] = i
    return transpose(out, inverse)


def cumsum(x: CudaArray, axis: int) -> CudaArray:
    if x.dtype.kind in "bi":
        x = astype(x, _INT64, False)
    return _along_last(lambda o, v: _cuda.cumulative("cumsum", o, v), x, axis)


def cumprod(x: CudaArray, axis: int) -> CudaArray:
    if x.dtype.kind in "bi":
        x = astype(x, _INT64, False)
    return _along_last(lambda o, v: _cuda.cumulative("cumprod", o, v), x, axis)


def softmax_last(x: CudaArray, axis: int, log: bool) -> CudaArray:
    """softmax or log_softmax along `axis` with the fused kernel (one block per row)."""
    return _along_last(lambda o, v: _cuda.softmax(o, contiguous(_wrap(v))._a, log), x, axis)


def softmax_backward_last(g: CudaArray, y: CudaArray, axis: int, log: bool) -> CudaArray:
    """d(loss)/dx from the softmax (or log_softmax) output y and its gradient g, along `axis`."""
    g = broadcast_to(astype(g, y.dtype, False), y.shape)
    axis = _axis(axis, y.ndim)
    order = [d for d in range(y.ndim) if d != axis] + [axis]
    gm, ym = contiguous(transpose(g, order)), contiguous(transpose(y, order))
    out = empty(ym.shape, y.dtype)
    _cuda.softmax_backward(out._a, gm._a, ym._a, log)
    inverse = [0] * y.ndim
    for i, d in enumerate(order):
        inverse[d] = i
    return transpose(out, inverse)


# ---- indexing ----
def _index_array(v: Any) -> CudaArray:
    """An int64 device index from a CudaArray, NumPy array, list or range."""
    if isinstance(v, CudaArray):
        if v.dtype.kind not in "iu":
            raise IndexError(f"index arrays must be integers, got {v.dtype}")
        return astype(v, _INT64, False)
    arr = np.asarray(list(v) if isinstance(v, range) else v)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise IndexError(f"index arrays must be integers, got {arr.dtype}")
    return from_numpy(arr.astype(np.int64))


def take(x: CudaArray, indices: Any, axis: int | None = None) -> CudaArray:
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = _axis(axis, x.ndim)
    idx = _index_array(indices)
    flat = reshape(idx, (-1,))
    shape = list(x.shape)
    shape[axis] = flat.size
    out = empty(shape, x.dtype)
    _cuda.take(out._a, x._a, contiguous(flat)._a, axis)
    return reshape(out, x.shape[:axis] + idx.shape + x.shape[axis + 1 :])


def take_along_axis(x: CudaArray, index: Any, axis: int) -> CudaArray:
    idx = _index_array(index)
    out = empty(idx.shape, x.dtype)
    _cuda.gather(out._a, x._a, idx._a, _axis(axis, x.ndim))
    return out


def _scatter(out: CudaArray, index: CudaArray, values: Any, axis: int, accumulate: bool) -> None:
    v = broadcast_to(_operand(values, out.dtype), index.shape)
    _cuda.scatter(out._a, index._a, v._a, axis, accumulate)


def _is_int(it: Any) -> bool:
    return isinstance(it, (int, np.integer)) and not isinstance(it, (bool, np.bool_))


def _is_array(it: Any) -> bool:
    return isinstance(it, (CudaArray, np.ndarray, list))


def _split_index(x: CudaArray, index: Any) -> tuple:
    """Apply the basic part of a NumPy index (ints, slices, None, Ellipsis) as a view, and
    return (view, dim of the one index array in the view or None, that index array, whether
    NumPy puts its dims first). Raises NotImplementedError for several index arrays."""
    items = list(index) if isinstance(index, tuple) else [index]
    if builtins.sum(_is_array(it) for it in items) > 1:
        raise NotImplementedError("getitem/setitem with more than one index array is not implemented for CUDA")
    consumed = builtins.sum(1 for it in items if it is not None and it is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, but {consumed} were indexed")
    ellipsis = [k for k, it in enumerate(items) if it is Ellipsis]
    if ellipsis:
        items[ellipsis[0] : ellipsis[0] + 1] = [slice(None)] * (x.ndim - consumed)
    else:
        items += [slice(None)] * (x.ndim - consumed)
    shape, strides, offset = [], [], x._a.offset
    adv_dim, adv_index, d = None, None, 0
    for it in items:
        if it is None:
            shape.append(1)
            strides.append(0)
            continue
        size, stride = x.shape[d], x._a.strides[d]
        if _is_array(it):
            it = it if isinstance(it, CudaArray) else np.asarray(it)
            if it.dtype == _BOOL:
                if it.ndim != 1:
                    raise NotImplementedError("boolean mask indexing on CUDA takes a 1-D mask")
                if it.shape[0] != size:
                    raise IndexError(f"boolean index of length {it.shape[0]} does not match dim {d} of size {size}")
                it = np.flatnonzero(to_numpy(it) if isinstance(it, CudaArray) else it)  # the count needs the host
            adv_dim, adv_index = len(shape), it
            shape.append(size)
            strides.append(stride)
        elif isinstance(it, slice):
            start, stop, step = it.indices(size)
            n = len(range(start, stop, step))
            shape.append(n)
            strides.append(stride * step)
            offset += start * stride if n else 0
        elif _is_int(it):
            i = int(it)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for axis {d} with size {size}")
            offset += (i % size) * stride
        else:
            raise IndexError(f"unsupported index {it!r} for a CUDA array")
        d += 1
    # With an index array, ints are advanced indices too; NumPy puts the index dims first
    # when a slice or None separates them.
    adv = [k for k, it in enumerate(items) if _is_array(it) or (_is_int(it) and adv_dim is not None)]
    first = adv_dim is not None and adv[-1] - adv[0] + 1 != len(adv)
    return _view(x, shape, strides, offset), adv_dim, adv_index, first


def getitem(x: CudaArray, index: Any) -> CudaArray:
    view, d, idx, first = _split_index(x, index)
    if d is None:
        return view
    out = take(view, idx, axis=d)
    if first and d:
        n = np.ndim(idx) if not isinstance(idx, CudaArray) else idx.ndim
        order = list(range(d, d + n)) + [a for a in range(out.ndim) if not d <= a < d + n]
        out = transpose(out, order)
    return out


def _advanced_target(view: CudaArray, d: int, idx: Any) -> tuple:
    """(index broadcast along dim d of view's shape with the index dims flattened, the shape
    values must broadcast to, the flattened-values shape) for index_put / index_add."""
    flat = reshape(_index_array(idx), (-1,))
    shape = view.shape[:d] + (flat.size,) + view.shape[d + 1 :]
    index = broadcast_to(reshape(flat, (1,) * d + (flat.size,) + (1,) * (view.ndim - d - 1)), shape)
    idx_shape = tuple(np.shape(idx)) if not isinstance(idx, CudaArray) else idx.shape
    return index, view.shape[:d] + idx_shape + view.shape[d + 1 :], shape


def _put(x: CudaArray, index: Any, value: Any, accumulate: bool) -> None:
    view, d, idx, first = _split_index(x, index)
    if d is None:
        src = binary("add", view, value) if accumulate else _operand(value, x.dtype)
        _inplace(view, copy(src) if may_share_memory(src, x) else src)
        return
    if first and d:
        raise NotImplementedError("setitem/index_add with an index array separated from an int index is not implemented for CUDA")
    index, value_shape, flat_shape = _advanced_target(view, d, idx)
    v = reshape(broadcast_to(_operand(value, x.dtype), value_shape), flat_shape)
    _scatter(view, index, v, d, accumulate)


def setitem(x: CudaArray, index: Any, value: Any) -> None:
    _put(x, index, value, False)


def index_add(out: CudaArray, index: Any, values: Any) -> None:
    """out[index] += values, with repeated indices adding up (atomics: float sums may differ
    in the last bits from run to run)."""
    _put(out, index, values, True)


# ---- matmul ----
def matmul(a: CudaArray, b: CudaArray, bf16: bool = False, bias: CudaArray | None = None) -> CudaArray:
    """a: (..., M, K), b: (..., K, N) with equal batch shapes (already broadcast), plus an
    optional (N,) bias added to every row. bf16: float32 operands rounded to bfloat16,
    tensor cores, float32 accumulation (autocast)."""
    if a.dtype != b.dtype:
        dtype = np.result_type(a.dtype, b.dtype)
        a, b = astype(a, dtype, False), astype(b, dtype, False)
    if a.dtype == _BOOL:
        raise TypeError("matmul: bool arrays are not supported on CUDA")
    out = empty(a.shape[:-1] + (b.shape[-1],), a.dtype)
    _cuda.matmul(out._a, a._a, b._a, bf16)
    return out if bias is None else binary("add", out, bias)
