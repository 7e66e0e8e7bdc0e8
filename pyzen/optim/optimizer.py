"""`Optimizer`: the base class of pyzen's optimizers (PyTorch's `torch.optim.Optimizer`).

An optimizer holds `param_groups` (a list of dicts: "params" plus that group's options, filled
from `defaults`) and `state` (a dict keyed by parameter). Subclasses implement `step`.

`state_dict()` uses PyTorch's layout::

    {"state": {0: {"step": 3, "exp_avg": Tensor, ...}, 1: {...}},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}

Parameters are numbered in the order they appear across the groups. Per-parameter state
holds pyzen Tensors (references to the live buffers, like PyTorch) and plain Python values;
step counts are Python ints (not 0-d tensors as in PyTorch; a 0-d tensor step read from a
PyTorch-style state dict is converted to an int on load). Everything in it can be written by
`pyzen.save`. `load_state_dict` copies the tensors, so the loaded optimizer never shares
buffers with the state dict it came from.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Iterable

from .. import backend
from .._tensor import Tensor
from ..autograd import grad_mode

ParamsT = Iterable[Tensor] | Iterable[dict]


class _RequiredParameter:
    """Marks an option that has no default and must be given (per group or to the constructor)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _check_number(name: str, value: Any, low: float = 0.0, high: float | None = None, high_open: bool = True) -> None:
    """Raise ValueError naming `value` unless low <= value (< or <=) high."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value) and value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bound = "" if high is None else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(f"Invalid {name} value: {value!r} (expected a number >= {low}{bound})")


def _check_betas(betas: Any) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))")
    for i, b in enumerate(betas):
        _check_number(f"beta parameter at index {i}", b, 0.0, 1.0)


class Optimizer:
    """Base class for all optimizers.

    `params` is an iterable of Tensors, or of dicts each holding "params" (Tensors) and options
    that override `defaults` for that group. Parameters must come in a deterministic order
    (a list, not a set), since state dicts refer to them by position.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {type(params).__name__}"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ---- groups ----
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (a dict with "params" and optional per-group options)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"add_param_group: param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError("add_param_group: param_group must have a 'params' key")
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of "
                "tensors in sets changes between runs; use a list instead"
            )
        else:
            params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but parameter {i} is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (parameter {i} has grad_fn {type(p.grad_fn).__name__})")
            if not p.is_floating_point():
                raise ValueError(f"optimizer can only optimize floating point Tensors, but parameter {i} is {p.dtype!r}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        self._validate_group(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Check a group's options (subclasses: raise ValueError naming the bad value)."""

    # ---- gradients and steps ----
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if g.grad_fn is not None:
                    g.detach_()
                else:
                    g.requires_grad_(False)
                with grad_mode.no_grad():
                    g.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step; `closure` re-evaluates the model and returns the loss."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    @staticmethod
    def _evaluate(closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with grad_mode.enable_grad():
            return closure()

    # ---- state dicts ----
    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: per-parameter state}, "param_groups": [options + "params": [indices]]}."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index and s}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load options and per-parameter state saved by `state_dict` (tensors are copied)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, but the optimizer has "
                f"{len(self.param_groups)}"
            )
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group {i} with {len(saved['params'])} parameters, "
                    f"which doesn't match the size of optimizer's group ({len(group['params'])})"
                )
        id_map = {}
        for group, saved in zip(self.param_groups, saved_groups):
            for p, i in zip(group["params"], saved["params"]):
                id_map[int(i)] = p
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            k = int(key)  # keys may come back as strings from foreign formats
            if k not in id_map:
                raise ValueError(f"loaded state dict has state for parameter {key!r}, which no parameter group lists")
            p = id_map[k]
            new_state[p] = {name: self._load_value(p, name, v) for name, v in value.items()}
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            g = {k: v for k, v in saved.items() if k != "params"}
            if "betas" in g:
                g["betas"] = tuple(g["betas"])  # a JSON round trip gives a list
            g["params"] = group["params"]
            new_groups.append(g)
        self.state = new_state
        self.param_groups = new_groups

    @staticmethod
    def _load_value(p: Tensor, name: str, value: Any) -> Any:
        if name == "step":
            return int(value.item()) if isinstance(value, Tensor) else int(value)
        if isinstance(value, Tensor):
            data = value._data
            be = backend.of(data)
            if value.is_floating_point() and value.dtype != p.dtype:
                data = be.astype(data, p._data.dtype)
            else:
                data = be.copy(data)
            if tuple(data.shape) != tuple(p.shape) and name != "step":
                raise ValueError(
                    f"load_state_dict: state {name!r} has shape {tuple(data.shape)}, but its parameter has "
                    f"shape {tuple(p.shape)}"
                )
            return Tensor._make(data)
        return value


def _params_with_grad(group: dict[str, Any]) -> list[Tensor]:
    return [p for p in group["params"] if p.grad is not None]
