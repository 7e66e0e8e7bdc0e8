"""`nn.Parameter`: a leaf tensor that a Module registers as one of its parameters."""
from __future__ import annotations

from .._tensor import Tensor


class Parameter(Tensor):
    """Shares memory (and version counter) with `data`; requires grad by default."""

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> "Parameter":
        if data is None:
            from ..creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor, got {type(data).__name__}")
        p = object.__new__(cls)
        p._data, p._vc, p._base = data._data, data._vc, None
        p.grad_fn, p._output_nr, p._grad, p._requires_grad = None, 0, None, False
        p.requires_grad_(requires_grad)
        return p

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass  # everything is set in __new__

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
