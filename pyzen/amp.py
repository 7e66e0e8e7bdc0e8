"""`pyzen.amp`: PyTorch's mixed-precision API as a documented pass-through.

pyzen has no float16/bfloat16 yet, so there is nothing to autocast and no gradient underflow
to guard against. Training scripts written for PyTorch's AMP run unchanged:

* `autocast(device_type, dtype=None, enabled=True)` is a context manager (and decorator) that
  changes nothing: ops run in their inputs' dtype.
* `GradScaler(enabled=False)` passes everything through: `scale(loss)` returns loss,
  `step(optimizer)` calls `optimizer.step()`, `unscale_` and `update` do nothing.
  `GradScaler(enabled=True)` raises NotImplementedError rather than pretend to scale.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["GradScaler", "autocast"]


class autocast:
    """A no-op stand-in for `torch.autocast` (pyzen has no reduced-precision dtypes yet)."""

    def __init__(self, device_type: str = "cpu", dtype: Any = None, enabled: bool = True, cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise TypeError(f"autocast: device_type must be a str such as 'cpu' or 'cuda', got {device_type!r}")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)

    def __enter__(self) -> "autocast":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

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
                "GradScaler(enabled=True): pyzen has no float16 training yet, so there is no loss scaling to do; "
                "use GradScaler(enabled=False) (a pass-through) or no scaler"
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
