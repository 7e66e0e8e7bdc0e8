"""gradcheck: analytical gradients against central finite differences, in float64."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .._tensor import Tensor


class GradcheckError(RuntimeError):
    pass


def _outputs(fn: Callable, inputs: Sequence[Any]) -> list:
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, Tensor) and o.is_floating_point()]


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Check d(fn)/d(inputs) computed by backward against (f(x+eps) - f(x-eps)) / 2eps.

    Every floating output is checked against every input that requires grad, one output
    element's gradient (a vector-Jacobian product with a random cotangent) at a time.
    On failure the error names the input, the element index and both values."""
    from .grad_mode import enable_grad, no_grad

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    for i in checked:
        if inputs[i].dtype.name != "float64":
            raise GradcheckError(f"gradcheck: input {i} is {inputs[i].dtype!r}; finite differences need float64 inputs")
    if not checked:
        raise GradcheckError("gradcheck: no input requires grad")

    rng = np.random.default_rng(0)
    with enable_grad():
        outs = _outputs(fn, inputs)
    for k, o in enumerate(outs):
        if not np.isfinite(o._numpy().astype(np.float64)).all():
            raise GradcheckError(f"gradcheck: output {k} is not finite at these inputs; finite differences need finite outputs")
    cotangents = [rng.standard_normal(o.shape) for o in outs]

    def scalar_value() -> float:
        with no_grad():
            values = _outputs(fn, inputs)
        with np.errstate(all="ignore"):  # a perturbed input may leave the domain: a nan here is a mismatch below
            return float(sum(np.sum(v._numpy().astype(np.float64) * c) for v, c in zip(values, cotangents)))

    # Analytical: one backward of sum(out * cotangent).
    for i in checked:
        inputs[i].grad = None
    with enable_grad():
        outs = _outputs(fn, inputs)
        total = None
        for o, c in zip(outs, cotangents):
            if not o.requires_grad:
                continue
            term = (o * Tensor._make(c.astype(o._data.dtype))).sum()
            total = term if total is None else total + term
    analytic = {}
    if total is not None:
        total.backward()
    for i in checked:
        g = inputs[i].grad
        analytic[i] = np.zeros(inputs[i].shape) if g is None else g._numpy().astype(np.float64).copy()
        inputs[i].grad = None

    # Numerical: perturb each element in place.
    for i in checked:
        data = inputs[i]._data
        flat = data.reshape(-1)
        if not np.shares_memory(flat, data) and data.size:
            raise GradcheckError(f"gradcheck: input {i} must be contiguous so it can be perturbed in place")
        numeric = np.zeros(data.size)
        for j in range(data.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = scalar_value()
            flat[j] = orig - eps
            minus = scalar_value()
            flat[j] = orig
            numeric[j] = (plus - minus) / (2 * eps)
        a = analytic[i].reshape(-1)
        excess = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
        bad = ~(excess <= 0)  # a nan on either side (a perturbation left the domain) is a mismatch
        if bad.any():
            j = int(np.argmax(np.where(bad, np.nan_to_num(excess, nan=np.inf), -np.inf)))
            index = tuple(int(k) for k in np.unravel_index(j, data.shape)) if data.ndim else ()
            msg = (
                f"gradcheck: Jacobian mismatch for input {i} (shape {tuple(data.shape)}) at index {index}: "
                f"analytical {float(a[j])!r} vs numerical {float(numeric[j])!r} ({int(bad.sum())} of {a.size} elements differ; "
                f"atol={atol}, rtol={rtol})"
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
