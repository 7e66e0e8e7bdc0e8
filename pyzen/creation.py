"""Tensor creation: `tensor`, `zeros`, `arange`, `rand`, ... with PyTorch's signatures."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import _dtype, backend
from ._device import device as _device_cls
from ._tensor import Size, Tensor
from .autograd import grad_mode

DType = _dtype.dtype
DeviceLike = Any  # str | pyzen.device | None


def _backend(device: DeviceLike) -> Any:
    if device is None:
        return backend.cpu
    return backend.for_device(_device_cls(device))


def _finish(data: Any, requires_grad: bool, device: DeviceLike = None) -> Tensor:
    t = Tensor._make(data)
    if device is not None and _device_cls(device).type != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _to_array(data: Any, dtype: DType | None, op: str) -> np.ndarray:
    """Copy Python data, NumPy arrays or Tensors into a new array of a supported dtype."""
    if isinstance(data, Tensor):
        arr = data._numpy()
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        arr = np.array(_unwrap(data))
        if dtype is None and arr.dtype.kind == "f":
            dtype = _dtype.get_default_dtype()
        if arr.dtype == object:
            raise TypeError(f"{op}: could not convert {type(data).__name__} to a tensor (ragged or non-numeric data)")
    if dtype is None:
        target = _dtype.storage_dtype(arr.dtype)
    else:
        if not isinstance(dtype, DType):
            raise TypeError(f"{op}: dtype must be a pyzen dtype such as pyzen.float32, got {dtype!r}")
        target = dtype.np
    return np.array(arr, dtype=target, copy=True)


def _unwrap(data: Any) -> Any:
    if isinstance(data, Tensor):
        return data._numpy()
    if isinstance(data, (list, tuple)):
        return [_unwrap(d) for d in data]
    return data


def _size(size: tuple, op: str) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.__index__()
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"{op}: size must be a sequence of ints, got {size!r}")
        if s < 0:
            raise ValueError(f"{op}: negative dimension {s} in size {tuple(size)}")
        out.append(int(s))
    return tuple(out)


def _float_dtype(dtype: DType | None, op: str) -> DType:
    d = dtype or _dtype.get_default_dtype()
    if not d.is_floating_point:
        raise TypeError(f"{op}: expected a floating point dtype, got {d!r}")
    return d


def tensor(data: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy arrays or Tensors)."""
    return _finish(_to_array(data, dtype, "tensor"), requires_grad, device)


def as_tensor(data: Any, dtype: DType | None = None, device: DeviceLike = None) -> Tensor:
    """Like `tensor`, but shares memory with a Tensor or NumPy array when no conversion is needed."""
    if isinstance(data, Tensor):
        t = data if dtype is None else data.to(dtype)
        return t if device is None else t.to(device)
    if isinstance(data, np.ndarray) and data.dtype in _dtype._FROM_NP and (dtype is None or dtype.np == data.dtype):
        return _finish(data, False, device)
    return tensor(data, dtype, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with `array` (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    _dtype.from_numpy_dtype(array.dtype)
    return Tensor._make(array)


def zeros(*size: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    shape = _size(size, "zeros")
    return _finish(_backend(device).zeros(shape, (dtype or _dtype.get_default_dtype()).np), requires_grad)


def ones(*size: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    shape = _size(size, "ones")
    return _finish(_backend(device).ones(shape, (dtype or _dtype.get_default_dtype()).np), requires_grad)


def empty(*size: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    shape = _size(size, "empty")
    return _finish(_backend(device).empty(shape, (dtype or _dtype.get_default_dtype()).np), requires_grad)


def full(size: Sequence[int], fill_value: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    shape = _size((size,), "full")
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if dtype is None:
        dtype = _dtype.promote([], [], [_dtype.scalar_kind(fill_value)])
    return _finish(_backend(device).full(shape, fill_value, dtype.np), requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"arange: start, end and step must be finite, got {tuple(values)}")
    start, end, step = values
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: upper bound and step sign are inconsistent (start={start}, end={end}, step={step})")
    if dtype is None:
        dtype = _dtype.promote([], [], [_dtype.scalar_kind(v) for v in values] + [1])
    n = max(math.ceil((end - start) / step), 0)
    data = start + step * np.arange(n, dtype=np.float64) if dtype.is_floating_point else np.arange(start, end, step)
    return _finish(data.astype(dtype.np, copy=False), requires_grad, device)


def linspace(start: float, end: float, steps: int, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    start, end = (v.item() if isinstance(v, Tensor) else v for v in (start, end))
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"linspace: start and end must be finite, got {start} and {end}")
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    dtype = dtype or _dtype.get_default_dtype()
    return _finish(np.linspace(start, end, steps, dtype=np.float64).astype(dtype.np), requires_grad, device)


def eye(n: int, m: int | None = None, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    n, m = _size((n, n if m is None else m), "eye")
    return _finish(_backend(device).eye(n, m, dtype=(dtype or _dtype.get_default_dtype()).np), requires_grad)


def _like(fn: Any, name: str) -> Any:
    def like(input: Tensor, *args: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
        return fn(input.shape, *args, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)

    like.__name__ = like.__qualname__ = name
    like.__doc__ = f"`{fn.__name__}` with the shape (and by default the dtype) of `input`."
    return like


def rand(*size: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from pyzen's generator (see `manual_seed`)."""
    shape = _size(size, "rand")
    return _finish(_backend(device).rand(shape, _float_dtype(dtype, "rand").np), requires_grad)


def randn(*size: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from pyzen's generator."""
    shape = _size(size, "randn")
    return _finish(_backend(device).randn(shape, _float_dtype(dtype, "randn").np), requires_grad)


def randint(*args: Any, dtype: DType | None = None, device: DeviceLike = None, requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """`randint(high, size)` or `randint(low, high, size)`: integers in [low, high)."""
    if "size" in kwargs:
        args = args + (kwargs.pop("size"),)
    low = kwargs.pop("low", None)
    high = kwargs.pop("high", None)
    if kwargs:
        raise TypeError(f"randint: unexpected arguments {sorted(kwargs)}")
    if low is not None or high is not None:
        args = tuple(v for v in (low, high) if v is not None) + args
    if len(args) == 2:
        low, high, size = 0, args[0], args[1]
    elif len(args) == 3:
        low, high, size = args
    else:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    shape = _size((size,), "randint")
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    data = _backend(device).randint(int(low), int(high), shape)
    if dtype is not None:
        data = data.astype(dtype.np)
    return _finish(data, requires_grad)


def randperm(n: int, dtype: DType | None = None, device: DeviceLike = None) -> Tensor:
    (n,) = _size((n,), "randperm")
    data = _backend(device).randperm(n)
    return _finish(data if dtype is None else data.astype(dtype.np), False)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False) -> Tensor:
    """Sample category indices from each row of non-negative weights (1-D or 2-D)."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: expected a 1-D or 2-D tensor of weights, got shape {tuple(input.shape)}")
    w = input._numpy()
    if (w < 0).any() or not (w == w).all() or (w.sum(axis=-1) <= 0).any():
        raise ValueError("multinomial: weights must be non-negative, finite, with a positive sum per row")
    n = w.shape[-1]
    if not replacement and num_samples > n:
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from {n} categories")
    if not replacement and num_samples > (w.reshape(-1, n) > 0).sum(axis=-1).min(initial=n):
        raise ValueError(f"multinomial: a row has fewer than {num_samples} categories of positive weight to draw without replacement")
    data = input._data
    bx = backend.of(data)
    out = bx.multinomial(bx.reshape(data, (-1, n)), int(num_samples), bool(replacement))
    return Tensor._make(bx.reshape(out, w.shape[:-1] + (num_samples,)))


zeros_like = _like(zeros, "zeros_like")
ones_like = _like(ones, "ones_like")
empty_like = _like(empty, "empty_like")
full_like = _like(full, "full_like")
rand_like = _like(rand, "rand_like")
randn_like = _like(randn, "randn_like")


def randint_like(input: Tensor, low: int, high: int | None = None, dtype: DType | None = None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, dtype=dtype or input.dtype)


def is_grad_enabled() -> bool:
    return grad_mode.is_grad_enabled()
