"""`nn.utils`: gradient clipping."""
from __future__ import annotations

import math
from typing import Iterable

from .. import backend
from .._dtype import float32, float64
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so their joint norm is at most max_norm; returns the norm
    before clipping. As in PyTorch, everything stays on the gradients' device: the gradients
    are always multiplied by min(max_norm / (norm + 1e-6), 1), and the norm is read back to
    the host (a device sync) only for error_if_nonfinite."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad._data for p in params if p.grad is not None]
    if not grads:
        return Tensor._make(backend.cpu.zeros((), float32.np))
    be = backend.of(grads[0])
    by_dtype: dict = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        parts = [be.reshape(be.astype(be.amax(be.absolute(g)), float64.np), (1,)) for g in grads if g.size]
        total = be.amax(be.concatenate(parts)) if parts else be.zeros((), float64.np)
    elif norm_type == 2.0:  # multi-tensor kernels: a few launches for every gradient
        sums = [be.foreach_sum_squares(group) for group in by_dtype.values()]
        total = be.sqrt(be.sum(sums[0] if len(sums) == 1 else be.concatenate(sums)))
    else:
        parts = [be.reshape(be.sum(be.absolute(g) ** norm_type), (1,)) for g in grads]
        total = be.sum(be.concatenate(parts), dtype=float64.np) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite ({float(total)})")
    coef = be.minimum(max_norm / (total + 1e-6), 1.0)
    with no_grad():
        for dtype, group in by_dtype.items():
            be.foreach_mul_(group, be.astype(coef, dtype))
    return Tensor._make(be.asarray(total, grads[0].dtype))
