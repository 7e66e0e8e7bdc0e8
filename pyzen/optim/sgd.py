"""`SGD`: stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

PyTorch's update, per parameter p with gradient g (negated first when maximize=True)::

    g = g + weight_decay * p                       if weight_decay != 0
    b = g (first step) or momentum * b + (1 - dampening) * g    if momentum != 0
    g = g + momentum * b (nesterov) or b
    p = p - lr * g
"""
from __future__ import annotations

from typing import Any, Callable

from .. import backend
from .._tensor import Tensor
from ..autograd import grad_mode
from .optimizer import Optimizer, ParamsT, _check_number, _params_with_grad


class SGD(Optimizer):
    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        _check_number("learning rate", group["lr"])
        _check_number("momentum", group["momentum"])
        _check_number("dampening", group["dampening"])
        _check_number("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"Nesterov momentum requires a momentum and zero dampening, got momentum={group['momentum']!r}, "
                f"dampening={group['dampening']!r}"
            )

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._evaluate(closure)
        with grad_mode.no_grad():
            for group in self.param_groups:
                lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
                weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
                for p in _params_with_grad(group):
                    x = p._data
                    be = backend.of(x)
                    d = be.negative(p.grad._data) if maximize else p.grad._data
                    if weight_decay != 0:
                        d = be.add(d, be.multiply(x, weight_decay))
                    if momentum != 0:
                        state = self.state[p]
                        buf = state.get("momentum_buffer")
                        if buf is None:
                            buf = Tensor._make(be.copy(d))
                            state["momentum_buffer"] = buf
                        else:
                            be.setitem(buf._data, Ellipsis, be.add(be.multiply(buf._data, momentum), be.multiply(d, 1 - dampening)))
                            buf._vc[0] += 1
                        d = be.add(d, be.multiply(buf._data, momentum)) if nesterov else buf._data
                    be.setitem(x, Ellipsis, be.subtract(x, be.multiply(d, lr)))
                    p._vc[0] += 1
        return loss
