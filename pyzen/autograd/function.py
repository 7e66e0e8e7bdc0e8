"""`Function`: one differentiable op, its forward and backward side by side.

Applying a Function records a node (the Function instance itself, which is also the `ctx`
its forward and backward see). A node keeps one edge per positional input: where that
input's gradient goes (the node that produced it, or the leaf tensor itself), with the
input's shape and dtype so the engine can reduce a broadcast gradient back to that shape.
It also keeps its call site: the first frame of the user's code that created it, so that an
error in its backward can point at the line of the forward that made it.

Two flavours share this class:
- user Functions (PyTorch's API): forward and backward take and return Tensors;
- pyzen's own ops set `_raw = True`: forward and backward take and return backend arrays,
  which keeps the hot path free of Tensor wrappers.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from .. import backend
from .._tensor import Tensor
from . import grad_mode


class Function:
    _raw = False  # pyzen ops: arrays in and out; user Functions: Tensors in and out
    _view = False  # the output may share memory with the first input (and its version counter)

    # Node state, set by apply().
    edges: tuple
    needs_input_grad: tuple
    n_outputs: int = 1
    _out_meta: tuple = ()
    _saved: tuple | None = ()
    _saved_versions: tuple = ()
    _freed = False
    _retained: dict | None = None
    _site: tuple | None = None  # (filename, lineno, function) of the user code that made it

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("subclasses of Function must implement forward")

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        raise NotImplementedError("subclasses of Function must implement backward")

    # ---- ctx API ----
    def save_for_backward(self, *values: Any) -> None:
        self._saved = values

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(_FREED_MESSAGE)
        check_versions(self)
        return self._saved

    # ---- recording ----
    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        ctx = cls()
        record = False
        if grad_mode._state.enabled:
            ctx.needs_input_grad = needs = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
            record = True in needs
        else:
            ctx.needs_input_grad = (False,) * len(args)
        if cls._raw:
            out = cls.forward(ctx, *[a._data if isinstance(a, Tensor) else a for a in args], **kwargs)
            result = Tensor._make(out, True, ctx, 0) if record else Tensor._make(out)
            if cls._view:
                result._alias(args[0])
            if not record:
                return result
            outputs = (result,)
        else:
            with grad_mode.no_grad():
                out = cls.forward(ctx, *args, **kwargs)
            outputs = out if isinstance(out, tuple) else (out,)
            if not record:
                return out
            outputs = tuple(_claim_output(o, ctx, i, args) for i, o in enumerate(outputs))
            result = outputs if isinstance(out, tuple) else outputs[0]
        ctx._site = _user_site()
        ctx.edges = tuple(_edge(a) if n else None for a, n in zip(args, needs))
        ctx.n_outputs = len(outputs)
        if not cls._raw:  # a user Function's unused outputs get zero gradients of this form
            ctx._out_meta = tuple((o._data.shape, o._data.dtype, backend.of(o._data)) for o in outputs)
        _record_versions(ctx, args, outputs)
        return result

    def _release(self) -> None:
        if self._saved:
            self._freed = True
        self._saved = None


# Frames in these files are pyzen's own; the examples are user code written with pyzen.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(__file__)) + os.sep
_EXAMPLES_DIR = os.path.join(_PACKAGE_DIR, "examples") + os.sep


def _user_site() -> tuple | None:
    """(filename, lineno, function) of the innermost frame outside pyzen. Plain values, never
    the frame: a frame would keep every local of the user's code alive as long as the graph."""
    frame = sys._getframe(1).f_back  # apply's caller
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) or filename.startswith(_EXAMPLES_DIR):
            return (filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


def describe(node: Function) -> str:
    """'MatMul, created at /path/user.py:12 (in train_step)': the op and where the user made it."""
    name = type(node).__name__
    if node._site is None:
        return name
    filename, lineno, function = node._site
    return f"{name}, created at {filename}:{lineno} (in {function})"


def _claim_output(o: Any, ctx: Function, i: int, args: tuple) -> Any:
    """Make a user forward's output a non-leaf of this node (a new alias if it returned an input)."""
    if not isinstance(o, Tensor):
        raise TypeError(f"{type(ctx).__name__}.forward must return Tensors, got {type(o).__name__}")
    if any(o is a for a in args):
        o = Tensor._make(o._data, vc=o._vc)
    o._requires_grad, o.grad_fn, o._output_nr = True, ctx, i
    return o


def _edge(t: Any) -> tuple:
    data = t._data
    target = t.grad_fn if t.grad_fn is not None else t
    return (target, t._output_nr, data.shape, data.dtype)


def _record_versions(ctx: Function, args: tuple, outputs: tuple) -> None:
    """Remember the version of every input or output whose memory backward will read, so
    that an in-place change made in between raises instead of giving wrong gradients."""
    saved = ctx._saved
    if not saved:
        return
    candidates = [a for a in args if isinstance(a, Tensor)] + list(outputs)
    versions = []
    for value in saved:
        for t in candidates:
            if value is t or value is t._data:
                versions.append((t._vc, t._vc[0], t))
                break
    if ctx._raw:
        # The saved output of a raw op is referenced only through its array: keep no Tensor.
        versions = [(vc, v, None) for vc, v, _ in versions]
    ctx._saved_versions = tuple(versions)


_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward(); specify retain_graph=True if you need to backward twice."
)


def check_versions(node: Function) -> None:
    for vc, version, _ in node._saved_versions:
        if vc[0] != version:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: the {type(node).__name__} backward needs version {version}, "
                f"the tensor is now at version {vc[0]}"
            )
