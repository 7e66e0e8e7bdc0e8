"""`pyzen.Tensor`: an array on a device, plus what autograd needs to know about it.

The array is the backend's (a NumPy ndarray on the CPU). Operators and methods are attached
in `_tensor_methods.py`; every op lives in `pyzen/ops/` as a Function.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from . import _dtype, backend
from ._device import CPU
from ._device import device as Device


class Size(tuple):
    """A tensor's shape: a tuple of ints (PyTorch's `torch.Size`)."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"pyzen.Size([{', '.join(map(str, self))}])"


class Tensor:
    __slots__ = ("_data", "_requires_grad", "grad_fn", "_output_nr", "_grad", "_vc", "_base", "__weakref__")
    __array_ufunc__ = None  # NumPy operators on (ndarray, Tensor) defer to Tensor's reflected ops

    def __init__(self, data: Any = (), *, dtype: _dtype.dtype | None = None) -> None:
        from .creation import _to_array

        self._data = _to_array(data, dtype or _dtype.get_default_dtype(), "Tensor")
        self._requires_grad = False
        self.grad_fn = None
        self._output_nr = 0
        self._grad = None
        self._vc = [0]
        self._base = None

    @staticmethod
    def _make(data: Any, requires_grad: bool = False, grad_fn: Any = None, output_nr: int = 0, vc: list | None = None) -> "Tensor":
        if isinstance(data, np.generic):  # NumPy returns scalars from 0-d operations
            data = np.asarray(data)
        t = object.__new__(Tensor)
        t._data = data
        t._requires_grad = requires_grad
        t.grad_fn = grad_fn
        t._output_nr = output_nr
        t._grad = None
        t._vc = [0] if vc is None else vc
        t._base = None
        return t

    def _alias(self, source: "Tensor") -> None:
        """Mark self as a view of `source` when their memory overlaps: views share a version counter."""
        a, b = self._data, source._data
        if np.may_share_memory(a, b) if type(a) is np.ndarray else backend.of(a).may_share_memory(a, b):
            self._vc = source._vc
            self._base = source if source._base is None else source._base

    # ---- attributes ----
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None) -> Size | int:
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_dim(dim, self._data.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype._FROM_NP[self._data.dtype]

    @property
    def device(self) -> Device:
        return CPU if type(self._data) is np.ndarray else backend.of(self._data).device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return backend.of(self._data).is_contiguous(self._data)

    @property
    def _version(self) -> int:
        return self._vc[0]

    # ---- autograd state ----
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "requires_grad_: you can only change requires_grad flags of leaf variables; "
                    "use .detach() to get a tensor that does not require grad"
                )
            return self
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(f"requires_grad_: only floating point tensors can require gradients, got {self.dtype}")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self) -> "Tensor | None":
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad: expected a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape or value.dtype != self.dtype:
                raise RuntimeError(
                    f"grad: assigned grad has shape {tuple(value.shape)} and dtype {value.dtype}, "
                    f"expected shape {tuple(self.shape)} and dtype {self.dtype}"
                )
        self._grad = value

    def _accumulate_grad(self, g: Any) -> None:
        be = backend.of(g)
        if self._grad is None:
            self._grad = Tensor._make(be.copy(g))  # own memory: g may be a broadcast or shared array
        else:
            self._grad._data += g

    def retain_grad(self) -> None:
        if not self._requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on a Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            from .autograd import engine

            engine.retain(self)

    @property
    def retains_grad(self) -> bool:
        node = self.grad_fn
        return node is not None and bool(node._retained) and self._output_nr in node._retained

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool | None = None, inputs: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (PyTorch's Tensor.backward)."""
        from .autograd import _roots, engine

        if gradient is not None and not isinstance(gradient, Tensor):
            gradient = Tensor._make(np.asarray(gradient, dtype=self._data.dtype))
        roots, grads = _roots(self, gradient, "backward")
        if inputs is None:
            engine.run_backward(roots, grads, bool(retain_graph))
            return
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        for t, g in zip(inputs, engine.run_backward(roots, grads, bool(retain_graph), capture=inputs)):
            if g is not None:
                t._accumulate_grad(g)

    # ---- conversion ----
    def item(self) -> Any:
        if self._data.size != 1:
            raise RuntimeError(f"item: a Tensor with {self._data.size} elements cannot be converted to a Python number")
        return self._numpy().item()

    def tolist(self) -> Any:
        return self._numpy().tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self._requires_grad and not force:
            raise RuntimeError("numpy: can't call numpy() on a Tensor that requires grad; use tensor.detach().numpy()")
        return backend.of(self._data).to_numpy(self._data)

    def _numpy(self) -> np.ndarray:
        """The values as a NumPy array (copied to the host for device tensors), ignoring autograd."""
        return backend.of(self._data).to_numpy(self._data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        a = self.numpy()
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return a.copy() if copy else a

    def detach(self) -> "Tensor":
        t = Tensor._make(self._data, vc=self._vc)
        t._base = self if self._base is None else self._base
        return t

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self._requires_grad = False
        return self

    # ---- Python protocols ----
    def __repr__(self) -> str:
        from ._format import format_tensor

        return format_tensor(self)

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"bool: the truth value of a Tensor with {self._data.size} elements is ambiguous; use .any() or .all()"
            )
        return bool(self.item())

    def __index__(self) -> int:
        if self._data.size != 1 or self._data.dtype.kind not in "ib":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Iterator["Tensor"]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__

    def __deepcopy__(self, memo: dict) -> "Tensor":
        if self.grad_fn is not None:
            raise RuntimeError("deepcopy: only leaf tensors (created by the user) support the deepcopy protocol")
        be = backend.of(self._data)
        t = object.__new__(type(self))  # keeps subclasses such as nn.Parameter
        t._data, t._requires_grad, t.grad_fn, t._output_nr, t._vc, t._base = be.copy(self._data), self._requires_grad, None, 0, [0], None
        t._grad = None if self._grad is None else Tensor._make(be.copy(self._grad._data))
        memo[id(self)] = t
        return t


def _dim(d: int, ndim: int, op: str) -> int:
    """Normalise a possibly negative dim, raising IndexError that names the op."""
    n = max(ndim, 1)
    if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
        raise TypeError(f"{op}: dim must be an int, got {d!r}")
    if not -n <= d < n:
        raise IndexError(f"{op}: dim {d} out of range for a {ndim}-d tensor (expected {-n}..{n - 1})")
    return int(d) % n
