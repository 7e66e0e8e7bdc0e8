"""Reverse-mode autograd: `Function`, the engine, grad mode and gradcheck."""
from __future__ import annotations

from typing import Any

from .._tensor import Tensor

from .engine import run_backward
from .function import Function
from .gradcheck import GradcheckError, gradcheck
from .grad_mode import (
    detect_anomaly, enable_grad, is_anomaly_enabled, is_grad_enabled, no_grad, set_detect_anomaly, set_grad_enabled,
)


def _roots(outputs: Any, grad_outputs: Any, op: str) -> tuple[list, list]:
    """Outputs as a list of Tensors and their starting gradients as backend arrays."""
    from .. import backend
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    grads = []
    for o, g in zip(outputs, grad_outputs):
        if not o.requires_grad:
            raise RuntimeError(f"{op}: one of the outputs does not require grad and does not have a grad_fn")
        if g is None:
            if o.numel() != 1:
                raise RuntimeError(f"{op}: grad can be implicitly created only for scalar outputs (shape {tuple(o.shape)})")
            grads.append(backend.of(o._data).ones(o._data.shape, o._data.dtype))
        else:
            if tuple(g.shape) != tuple(o.shape):
                raise RuntimeError(f"{op}: gradient has shape {tuple(g.shape)}, expected {tuple(o.shape)}")
            grads.append(g._data.astype(o._data.dtype, copy=False))
    return outputs, grads


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None) -> None:
    """Accumulate gradients of `tensors` into the leaves (PyTorch's autograd.backward)."""
    roots, grads = _roots(tensors, grad_tensors, "backward")
    run_backward(roots, grads, bool(retain_graph))


def grad(
    outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None, allow_unused: bool = False
) -> tuple:
    """Gradients of `outputs` with respect to `inputs`, returned instead of accumulated."""
    roots, grads = _roots(outputs, grad_outputs, "grad")
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: one of the inputs does not require grad")
    got = run_backward(roots, grads, bool(retain_graph), capture=inputs)
    result = []
    for g in got:
        if g is None and not allow_unused:
            raise RuntimeError("grad: one of the inputs was not used in the graph; pass allow_unused=True")
        result.append(None if g is None else Tensor._make(g))
    return tuple(result)


__all__ = [
    "Function", "GradcheckError", "backward", "detect_anomaly", "enable_grad", "grad", "gradcheck",
    "is_anomaly_enabled", "is_grad_enabled", "no_grad", "set_detect_anomaly", "set_grad_enabled",
]
