"""`pyzen.amp`: PyTorch's mixed-precision API.

* `autocast(device_type, dtype=None, enabled=True)` is a context manager (and decorator).
  With `dtype=pyzen.bfloat16`, matmul (so `nn.Linear`) and `scaled_dot_product_attention`
  on float32 tensors of that device type round their operands (and, in the backward, the
  incoming gradient) to bfloat16 and accumulate in float32: tensor-core kernels on CUDA;
  on the CPU, AMX tiles where the CPU has them (`pyzen._C.bf16_path()`), else the float32
  kernels on the rounded operands. Outputs and gradients stay
  float32 (pyzen tensors cannot hold bfloat16, see `pyzen.bfloat16`), as do layer norm,
  softmax, losses and every other op, which PyTorch's autocast also keeps in float32 or
  runs in float32 anyway. `dtype=None` or `dtype=pyzen.float32` change nothing. The state
  is per thread, like grad mode.
* `GradScaler(enabled=False)` passes everything through: `scale(loss)` returns loss,
  `step(optimizer)` calls `optimizer.step()`, `unscale_` and `update` do nothing.
  bfloat16 needs no loss scaling; `GradScaler(enabled=True)` (for float16) raises
  NotImplementedError rather than pretend to scale.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable

from . import _dtype

__all__ = ["GradScaler", "autocast", "get_autocast_dtype", "is_autocast_enabled"]

_state = threading.local()  # .dtypes: {device_type: compute dtype} of the innermost enabled autocast


def _dtypes() -> dict:
    if not hasattr(_state, "dtypes"):
        _state.dtypes = {}
    return _state.dtypes


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """Whether an enabled autocast with a dtype is active for `device_type` in this thread."""
    return device_type in _dtypes()


def get_autocast_dtype(device_type: str = "cuda") -> Any:
    """The dtype of the active autocast for `device_type` (None outside one)."""
    return _dtypes().get(device_type)


class autocast:
    """`torch.autocast`: reduced-precision compute in a region (see the module docstring for
    what pyzen runs in bfloat16)."""

    def __init__(self, device_type: str = "cpu", dtype: Any = None, enabled: bool = True, cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise TypeError(f"autocast: device_type must be a str such as 'cpu' or 'cuda', got {device_type!r}")
        if dtype is not None and dtype not in (_dtype.bfloat16, _dtype.float32):
            raise TypeError(f"autocast: dtype must be pyzen.bfloat16 or pyzen.float32 (pyzen has no float16), got {dtype!r}")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)
        self._saved: list = []

    def __enter__(self) -> "autocast":
        dtypes = _dtypes()
        self._saved.append(dtypes.get(self.device_type, None))
        if self.enabled and self.fast_dtype is not None:
            dtypes[self.device_type] = self.fast_dtype
        elif not self.enabled:
            dtypes.pop(self.device_type, None)
        return self

    def __exit__(self, *exc: object) -> None:
        previous = self._saved.pop()
        dtypes = _dtypes()
        if previous is None:
            dtypes.pop(self.device_type, None)
        else:
            dtypes[self.device_type] = previous

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper


class GradScaler:
    """PyTorch's GradScaler API; only enabled=False is supported (a pass-through)."""

    def __init__(
        self,
        device: str = "cpu",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = False,
    ) -> None:
        if enabled:
            raise NotImplementedError(
                "GradScaler(enabled=True): pyzen has no float16 training yet, so there is no loss scaling to do "
                "(bfloat16 autocast needs none); use GradScaler(enabled=False) (a pass-through) or no scaler"
            )
        self._enabled = False
        self._init_scale, self._growth_factor, self._backoff_factor, self._growth_interval = init_scale, growth_factor, backoff_factor, growth_interval

    def is_enabled(self) -> bool:
        return self._enabled

    def scale(self, outputs: Any) -> Any:
        return outputs

    def unscale_(self, optimizer: Any) -> None:
        return None

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        return None

    def get_scale(self) -> float:
        return 1.0

    def state_dict(self) -> dict:
        """Empty when disabled, like PyTorch's."""
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Ignored when disabled, like PyTorch's."""
        return None
