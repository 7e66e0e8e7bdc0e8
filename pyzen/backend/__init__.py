"""Backends: one table of array primitives per device. Nothing above this layer branches
on the device; it asks `backend.of(array)` for the module that owns an array."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from . import cpu


def errstate() -> Any:
    """Silence floating-point warnings of every backend (inf and nan propagate like PyTorch)."""
    return np.errstate(all="ignore")


def of(array: Any) -> ModuleType:
    if type(array) is np.ndarray or isinstance(array, np.generic):  # NumPy gives 0-d results as scalars
        return cpu
    module = getattr(type(array), "__pyzen_backend__", None)  # set by backend/cuda.py on CudaArray
    if module is not None:
        return module
    raise TypeError(f"pyzen has no backend for arrays of type {type(array).__name__}")


def for_device(device: Any) -> ModuleType:
    if device.type == "cpu":
        return cpu
    from .. import cuda

    cuda.require()  # raises with the reason CUDA is unavailable
    if device.index not in (None, 0):
        raise RuntimeError(f"pyzen uses one CUDA device, cuda:0; got {device}")
    from . import cuda as cuda_backend

    return cuda_backend
