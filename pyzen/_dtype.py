"""pyzen dtypes: float32 (default), float64, int64, bool, and PyTorch's promotion rules;
bfloat16 as a compute dtype for autocast (no tensor holds it)."""
from __future__ import annotations

import numpy as np


class dtype:
    """A tensor element type; `pyzen.float32` and friends are the only instances."""

    __slots__ = ("name", "np", "is_floating_point", "itemsize", "_kind")

    def __init__(self, name: str, np_dtype: type, kind: int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = kind == 2
        self.itemsize = self.np.itemsize
        self._kind = kind  # 0 bool < 1 integer < 2 floating: the promotion category

    def __repr__(self) -> str:
        return f"pyzen.{self.name}"

    def __reduce__(self) -> str:
        return self.name


bool_ = dtype("bool", np.bool_, 0)
int64 = dtype("int64", np.int64, 1)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)

_FROM_NP = {d.np: d for d in (bool_, int64, float32, float64)}


class compute_dtype:
    """A dtype kernels compute in but no tensor holds: `pyzen.bfloat16`, for
    `pyzen.autocast(..., dtype=pyzen.bfloat16)`. NumPy has no bfloat16, so pyzen tensors
    stay float32 and the kernels round their inputs."""

    __slots__ = ("name", "itemsize")
    is_floating_point = True

    def __init__(self, name: str, itemsize: int) -> None:
        self.name, self.itemsize = name, itemsize

    def __repr__(self) -> str:
        return f"pyzen.{self.name}"

    def __reduce__(self) -> str:
        return self.name

    @property
    def np(self) -> np.dtype:
        raise TypeError(f"pyzen tensors cannot hold {self!r}: it is a compute dtype, for autocast(dtype={self!r}); "
                        "tensors stay float32 and the kernels round their inputs")


bfloat16 = compute_dtype("bfloat16", 2)
_DEFAULT_FLOAT = float32


def from_numpy_dtype(np_dtype: np.dtype) -> dtype:
    try:
        return _FROM_NP[np_dtype]
    except KeyError:
        raise TypeError(f"pyzen supports float32, float64, int64 and bool; got numpy dtype {np_dtype}") from None


def storage_dtype(np_dtype: np.dtype) -> np.dtype:
    """The supported numpy dtype a foreign array converts to when pyzen copies it."""
    if np_dtype in _FROM_NP:
        return np_dtype
    if np_dtype.kind in "iu":
        return int64.np
    if np_dtype.kind == "f":
        return float32.np if np_dtype.itemsize <= 4 else float64.np
    raise TypeError(f"pyzen cannot hold numpy dtype {np_dtype} (supported: float32, float64, int64, bool)")


def get_default_dtype() -> dtype:
    return _DEFAULT_FLOAT


def set_default_dtype(d: dtype) -> None:
    global _DEFAULT_FLOAT
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"set_default_dtype: expected a floating point dtype, got {d!r}")
    _DEFAULT_FLOAT = d


def scalar_kind(value: object) -> int:
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    if isinstance(value, (float, np.floating)):
        return 2
    raise TypeError(f"expected a Tensor or a Python number, got {type(value).__name__}")


def _widest(group: list[dtype]) -> dtype | None:
    return max(group, key=lambda d: (d._kind, d.itemsize), default=None)


def promote(dims: list[dtype], zero_dims: list[dtype], scalar_kinds: list[int]) -> dtype:
    """PyTorch's result type: tensors with dimensions outrank 0-d tensors, which outrank
    Python scalars, unless the lower group holds a higher category (bool < int < float)."""
    result = _widest(dims)
    zero = _widest(zero_dims)
    if zero is not None and (result is None or zero._kind > result._kind):
        result = zero
    if scalar_kinds:
        kind = max(scalar_kinds)
        if result is None or kind > result._kind:
            result = (bool_, int64, _DEFAULT_FLOAT)[kind]
    return result
