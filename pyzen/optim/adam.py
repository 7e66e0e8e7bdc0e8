"""`Adam` and `AdamW`: both are one call of the backend's fused `adamw_step` per parameter
group and step, over every parameter of the group that has a gradient.

Adam adds `weight_decay * p` to the gradient (L2 penalty, decoupled=False); AdamW shrinks the
parameter by `lr * weight_decay` before the Adam update (decoupled=True). Per-parameter state:
"step" (a Python int), "exp_avg" and "exp_avg_sq" (Tensors shaped like the parameter), and
"max_exp_avg_sq" with amsgrad=True -- PyTorch's names, so state dicts line up.
"""
from __future__ import annotations

from typing import Any, Callable

from .. import backend
from .._tensor import Tensor
from ..autograd import grad_mode
from .optimizer import Optimizer, ParamsT, _check_betas, _check_number, _params_with_grad


class Adam(Optimizer):
    _decoupled = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        _check_number("learning rate", group["lr"])
        _check_number("epsilon", group["eps"])
        _check_betas(group["betas"])
        _check_number("weight_decay", group["weight_decay"])
        group["betas"] = tuple(group["betas"])

    def _state_for(self, p: Tensor, amsgrad: bool) -> dict[str, Any]:
        state = self.state[p]
        be = backend.of(p._data)
        if not state:
            state["step"] = 0
            state["exp_avg"] = Tensor._make(be.zeros(p._data.shape, p._data.dtype))
            state["exp_avg_sq"] = Tensor._make(be.zeros(p._data.shape, p._data.dtype))
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = Tensor._make(be.zeros(p._data.shape, p._data.dtype))
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._evaluate(closure)
        with grad_mode.no_grad():
            for group in self.param_groups:
                params = _params_with_grad(group)
                if not params:
                    continue
                amsgrad = group["amsgrad"]
                states = [self._state_for(p, amsgrad) for p in params]
                for s in states:
                    s["step"] += 1
                beta1, beta2 = group["betas"]
                backend.of(params[0]._data).adamw_step(
                    [p._data for p in params],
                    [p.grad._data for p in params],
                    [s["exp_avg"]._data for s in states],
                    [s["exp_avg_sq"]._data for s in states],
                    [s["max_exp_avg_sq"]._data for s in states] if amsgrad else None,
                    [s["step"] for s in states],
                    lr=float(group["lr"]),
                    beta1=float(beta1),
                    beta2=float(beta2),
                    eps=float(group["eps"]),
                    weight_decay=float(group["weight_decay"]),
                    decoupled=self._decoupled,
                    maximize=bool(group["maximize"]),
                )
                for p, s in zip(params, states):
                    p._vc[0] += 1
                    for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                        if name in s:
                            s[name]._vc[0] += 1
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay."""

    _decoupled = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
