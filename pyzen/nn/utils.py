"""`nn.utils`: gradient clipping."""
from __future__ import annotations

import math
from typing import Iterable

from .. import backend
from .._dtype import float32, float64
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so their joint norm is at most max_norm; returns the norm before clipping."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad._data for p in params if p.grad is not None]
    if not grads:
        return Tensor._make(backend.cpu.zeros((), float32.np))
    be = backend.of(grads[0])
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = max(float(be.amax(be.absolute(g))) if g.size else 0.0 for g in grads)
    else:
        total = sum(float(be.sum(be.absolute(g) ** norm_type, dtype=float64.np)) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite ({total})")
    coef = min(max_norm / (total + 1e-6), 1.0)
    if coef < 1.0:
        with no_grad():
            for p in params:
                if p.grad is not None:
                    p.grad._data *= p.grad._data.dtype.type(coef)
    return Tensor._make(be.asarray(total, grads[0].dtype))
