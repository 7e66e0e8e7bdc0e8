"""The backward engine: walk the graph from the outputs in dependency order, once.

Iterative (no recursion limit): count how many consumers each node has, then run a node
when every consumer has sent its gradient. Leaves accumulate into `.grad`; a node's saved
values are freed after it runs unless `retain_graph` is set.
"""
from __future__ import annotations

import weakref
from typing import Any, Sequence

from .. import backend
from .._tensor import Tensor
from . import grad_mode
from .function import _FREED_MESSAGE, Function, check_versions, describe
from .grad_mode import no_grad


def run_backward(
    roots: Sequence[Any], root_grads: Sequence[Any], retain_graph: bool, capture: Sequence[Any] | None = None
) -> list | None:
    """Backpropagate `root_grads` (arrays) from `roots` (Tensors).

    With `capture` (Tensors), gradients for those are returned instead of accumulated."""
    captured: dict[int, Any] = {}
    targets = {id(t): i for i, t in enumerate(capture)} if capture is not None else None
    capture_nodes = {}
    if capture is not None:
        for i, t in enumerate(capture):
            if t.grad_fn is not None:
                capture_nodes[(id(t.grad_fn), t._output_nr)] = i

    # Dependencies: how many gradients each node waits for.
    deps: dict[Function, int] = {}
    buffers: dict[Function, list] = {}
    ready: list[Function] = []
    stack = []
    for root, grad in zip(roots, root_grads):
        node = root.grad_fn
        if node is None:
            _deliver(root, grad, targets, captured)
            continue
        if node not in buffers:
            buffers[node] = [None] * node.n_outputs
            stack.append(node)
        _accumulate(buffers[node], root._output_nr, grad)
    seen = set(stack)
    while stack:
        node = stack.pop()
        if node._freed:
            raise RuntimeError(_FREED_MESSAGE)
        for edge in node.edges:
            if edge is not None and isinstance(edge[0], Function):
                child = edge[0]
                deps[child] = deps.get(child, 0) + 1
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
    ready = [n for n in buffers if n not in deps]

    anomaly = grad_mode._anomaly.enabled
    with no_grad(), backend.errstate():  # inf and nan in gradients propagate silently, like PyTorch
        while ready:
            node = ready.pop()
            try:
                in_grads = _run_node(node, buffers.pop(node), capture_nodes, captured, retain_graph)
                if anomaly:
                    _check_nan(node, in_grads)
                for edge, g in zip(node.edges, in_grads):
                    if edge is None or g is None:
                        continue
                    target, nr, shape, dtype = edge
                    be = backend.of(g)
                    if g.shape != shape:
                        g = be.sum_to(g, shape)
                    if g.dtype != dtype:
                        g = be.astype(g, dtype)
                    if isinstance(target, Function):
                        if target not in buffers:
                            buffers[target] = [None] * target.n_outputs
                        _accumulate(buffers[target], nr, g)
                        deps[target] -= 1
                        if deps[target] == 0:
                            ready.append(target)
                    else:
                        _deliver(target, g, targets, captured)
            except Exception as e:
                _point_at_forward(e, node)
                raise
    if capture is None:
        return None
    return [captured.get(i) for i in range(len(capture))]


def _run_node(node: Function, grads: list, capture_nodes: dict, captured: dict, retain_graph: bool) -> tuple:
    """Run one node's backward on the gradients of its outputs; return its inputs' gradients."""
    check_versions(node)
    for i, g in enumerate(grads):
        if g is None:
            shape, dtype, be = node._out_meta[i]
            grads[i] = be.zeros(shape, dtype)
        key = (id(node), i)
        if key in capture_nodes:
            captured[capture_nodes[key]] = grads[i]
    if node._retained:
        for i, ref in node._retained.items():
            t = ref()
            if t is not None:
                t._accumulate_grad(grads[i])
    in_grads = _call_backward(node, grads)
    if not retain_graph:
        node._release()
    return in_grads


def _point_at_forward(e: Exception, node: Function) -> None:
    """Add to `e` the op whose backward raised and the user's line that created it. A note
    (PEP 678) keeps the exception itself: its type, arguments and traceback are unchanged."""
    note = f"Raised in the backward of {describe(node)}"
    if hasattr(e, "add_note"):
        e.add_note(note)
    elif len(e.args) == 1 and isinstance(e.args[0], str):  # Python 3.10: no notes shown, so extend the message
        e.args = (f"{e.args[0]}\n{note}",)


def _check_nan(node: Function, in_grads: tuple) -> None:
    """Anomaly mode: the first op whose backward makes a NaN is where it came from. Only NaN,
    like PyTorch: an inf gradient can be legitimate, and a wrong one turns into NaN soon after."""
    for i, g in enumerate(in_grads):
        if g is not None and g.dtype.kind in "fc":
            be = backend.of(g)
            if be.any(be.not_equal(g, g)):  # only NaN differs from itself
                raise RuntimeError(
                    f"Function '{type(node).__name__}' returned nan values in its {i}th output "
                    f"(the gradient for its input {i})"
                )


def _accumulate(buffer: list, i: int, g: Any) -> None:
    buffer[i] = g if buffer[i] is None else buffer[i] + g


def _deliver(leaf: Any, g: Any, targets: dict | None, captured: dict) -> None:
    if targets is None:
        leaf._accumulate_grad(g)
    elif id(leaf) in targets:
        i = targets[id(leaf)]
        captured[i] = g if i not in captured else captured[i] + g


def _call_backward(node: Function, grads: list) -> tuple:
    n_inputs = len(node.edges)
    if node._raw:
        out = type(node).backward(node, *grads)
    else:
        out = type(node).backward(node, *[Tensor._make(g) for g in grads])
    if not isinstance(out, tuple):
        out = (out,)
    if node._raw and len(out) < n_inputs:  # pyzen ops leave out the trailing non-tensor arguments
        out = out + (None,) * (n_inputs - len(out))
    if len(out) != n_inputs:
        raise RuntimeError(
            f"{type(node).__name__}.backward returned {len(out)} gradients, expected {n_inputs} (one per forward input)"
        )
    if not node._raw:
        out = tuple(None if g is None else g._data for g in out)
    return out


def retain(tensor: Any) -> None:
    node = tensor.grad_fn
    if node._retained is None:
        node._retained = {}
    node._retained[tensor._output_nr] = weakref.ref(tensor)
