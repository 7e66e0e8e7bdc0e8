"""PyTorch-style printing: `tensor([[1., 2.], [3., 4.]], dtype=pyzen.float64, requires_grad=True)`."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _dtype


def format_tensor(t: Any) -> str:
    a = t._numpy()
    opts: dict[str, Any] = {"separator": ", ", "prefix": "tensor(", "threshold": 1000, "edgeitems": 3}
    if a.dtype.kind == "f":
        finite = a[np.isfinite(a)]
        integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        big = finite.size > 0 and (np.abs(finite).max() >= 1e8 or np.abs(finite[finite != 0]).min(initial=1) < 1e-4)
        opts["precision"] = 4
        opts["floatmode"] = "unique" if integral and not big else "fixed"
        opts["suppress_small"] = not big
    body = np.array2string(a, **opts)
    extras = []
    if t._data.dtype != _dtype.get_default_dtype().np and t._data.dtype not in (np.int64, np.bool_):
        extras.append(f"dtype={t.dtype!r}")
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{type(t.grad_fn).__name__}Backward>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
