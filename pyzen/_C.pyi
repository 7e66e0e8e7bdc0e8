"""pyzen CPU kernels (C++, OpenMP, run-time ISA dispatch). Mirrors csrc/bindings.cpp."""

from typing import Literal, overload

import numpy as np
import numpy.typing as npt

@overload
def matmul(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Batched matrix product: a (B, M, K) @ b (B, K, N) -> new C-contiguous (B, M, N).

    Both arrays must be float32 or both float64 (no conversion is done); any strides,
    including 0 (broadcast) and negative, are accepted. Float32 accumulates in float32.
    Raises ValueError for bad shapes or strides, TypeError for bad dtypes or non-arrays.
    """
@overload
def matmul(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

def gelu_forward(x: npt.NDArray[np.floating], approximate: Literal["none", "tanh"] = "none") -> npt.NDArray[np.floating]:
    """GELU of a C-contiguous float32/float64 array: exact (erf) or approximate='tanh'."""

def gelu_backward(
    grad: npt.NDArray[np.floating], x: npt.NDArray[np.floating], approximate: Literal["none", "tanh"] = "none"
) -> npt.NDArray[np.floating]:
    """grad * GELU'(x) for C-contiguous arrays of one shape and dtype."""

def isa() -> Literal["avx512", "avx2", "scalar"]:
    """The instruction set the CPU kernels use."""

def supported_isas() -> list[str]:
    """Instruction sets this CPU can run, best first; always ends with 'scalar'."""

def set_isa(name: str) -> None:
    """Force the CPU kernels onto one instruction set from supported_isas() (ValueError
    otherwise). The environment variable PYZEN_ISA does the same at import."""

def get_num_threads() -> int:
    """Threads the CPU kernels use (1 when built without OpenMP)."""

def set_num_threads(n: int) -> None:
    """Set the CPU kernels' thread count, n >= 1 (ignored when built without OpenMP)."""

def compiler() -> str:
    """Compiler that built this module, e.g. 'GCC 12.2.0'."""

def has_openmp() -> bool:
    """Whether this module was built with OpenMP."""
