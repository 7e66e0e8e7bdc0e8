"""`pyzen.testing.assert_close`: compare tensors, arrays and numbers with PyTorch's default tolerances."""
from __future__ import annotations

from typing import Any

import numpy as np

_TOLERANCES = {np.dtype(np.float32): (1.3e-6, 1e-5), np.dtype(np.float64): (1e-7, 1e-7)}


def _array(value: Any) -> np.ndarray:
    from ._tensor import Tensor

    if isinstance(value, Tensor):
        return value._numpy()
    return np.asarray(value)


def assert_close(
    actual: Any, expected: Any, *, rtol: float | None = None, atol: float | None = None, equal_nan: bool = False, check_dtype: bool = False, msg: str | None = None
) -> None:
    """Raise AssertionError unless |actual - expected| <= atol + rtol * |expected| everywhere.

    Default tolerances follow the less precise dtype (float32: rtol 1.3e-6, atol 1e-5)."""
    a, e = _array(actual), _array(expected)
    if a.shape != e.shape:
        raise AssertionError(msg or f"assert_close: shapes differ: {a.shape} vs {e.shape}")
    if check_dtype and a.dtype != e.dtype:
        raise AssertionError(msg or f"assert_close: dtypes differ: {a.dtype} vs {e.dtype}")
    if (rtol is None) != (atol is None):
        raise ValueError("assert_close: give both rtol and atol, or neither")
    if rtol is None:
        dtypes = [d for d in (a.dtype, e.dtype) if d in _TOLERANCES]
        rtol, atol = max((_TOLERANCES[d] for d in dtypes), default=(0.0, 0.0))
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(invalid="ignore"):
        close = np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not close.all():
        bad = ~close
        diff = np.abs(a64 - e64)
        diff = np.where(np.isnan(diff), np.inf, diff)
        j = np.unravel_index(int(np.argmax(np.where(bad, diff, -1))), a.shape) if a.ndim else ()
        raise AssertionError(
            msg
            or f"assert_close: {int(bad.sum())} of {a.size} elements differ (rtol={rtol}, atol={atol}); "
            f"worst at index {tuple(int(i) for i in j)}: {a64[j]!r} vs {e64[j]!r}"
        )
