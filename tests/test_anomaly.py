"""Errors raised in backward name the op and the line of user code that created it, and
anomaly mode finds the first op whose backward makes a NaN.

Expected lines come from this file's own source: each op under test sits on a line ending
in a `# site: NAME` marker, found by `site_of`, so the numbers never drift."""
from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

import pyzen
from pyzen.autograd import Function, detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from pyzen.autograd import function as function_module
from pyzen.autograd.engine import _point_at_forward

from conftest import assert_np_close, to_np

with open(__file__) as _f:
    _SOURCE = _f.read().splitlines()


def site_of(marker: str, function: str) -> str:
    """'file:line (in function)' of the line carrying `# site: marker`."""
    lines = [i + 1 for i, text in enumerate(_SOURCE) if text.endswith(f"# site: {marker}")]
    assert len(lines) == 1, (marker, lines)
    return f"{__file__}:{lines[0]} (in {function})"


def message(info: pytest.ExceptionInfo) -> str:
    """The exception's text as a traceback shows it: the message, then its notes."""
    return "\n".join([str(info.value), *getattr(info.value, "__notes__", [])])


def assert_points_at(info: pytest.ExceptionInfo, op: str, marker: str, function: str) -> None:
    expected = f"in the backward of {op}, created at {site_of(marker, function)}"
    assert expected in message(info), message(info)


def leaf(values: list) -> pyzen.Tensor:
    return pyzen.tensor(np.array(values, dtype=np.float64), requires_grad=True)


# ------------------------------------------------------------------ anomaly mode: NaN
def test_anomaly_names_the_op_that_made_the_first_nan():
    x = leaf([-1.0, 4.0])
    y = x.sqrt()  # site: sqrt
    z = (y * 3.0).sum()
    with detect_anomaly():
        with pytest.raises(RuntimeError, match=r"Function 'Sqrt' returned nan values in its 0th output") as info:
            z.backward()
    assert_points_at(info, "Sqrt", "sqrt", "test_anomaly_names_the_op_that_made_the_first_nan")


def test_anomaly_names_which_output():
    """0 * inf in Mul's backward: the NaN is in the gradient of the second input only."""
    a = leaf([0.0, 1.0])
    b = leaf([1.0, 2.0])
    y = (a * b).sum()  # site: mul
    with detect_anomaly():
        with pytest.raises(RuntimeError, match=r"'Mul' returned nan values in its 1th output") as info:
            pyzen.autograd.backward(y * float("inf"))
    assert_points_at(info, "Mul", "mul", "test_anomaly_names_which_output")


def test_anomaly_is_off_by_default_and_nan_propagates_silently():
    assert not is_anomaly_enabled()
    x = leaf([-1.0, 4.0])
    x.sqrt().sum().backward()
    got = to_np(x.grad)
    assert np.isnan(got[0]) and got[1] == 0.25


def test_anomaly_leaves_healthy_gradients_unchanged():
    x = leaf([0.5, 2.0, 3.0])
    with detect_anomaly():
        (x.sqrt() * x.log()).sum().backward()
    v = np.array([0.5, 2.0, 3.0])
    assert_np_close(to_np(x.grad), 0.5 / np.sqrt(v) * np.log(v) + np.sqrt(v) / v, 1e-12, 1e-12)


def test_detect_anomaly_as_decorator_and_set_detect_anomaly():
    @detect_anomaly()
    def inside() -> bool:
        return is_anomaly_enabled()

    @detect_anomaly
    def bare() -> bool:
        return is_anomaly_enabled()

    assert inside() and bare() and not is_anomaly_enabled()
    set_detect_anomaly(True)
    try:
        assert is_anomaly_enabled()
        with set_detect_anomaly(False):
            assert not is_anomaly_enabled()
        assert is_anomaly_enabled()
    finally:
        set_detect_anomaly(False)
    assert not is_anomaly_enabled()
    assert pyzen.autograd.detect_anomaly is detect_anomaly


def test_anomaly_mode_is_thread_local():
    results = {}

    def other_thread():
        results["enabled"] = is_anomaly_enabled()
        x = leaf([-1.0])
        x.sqrt().sum().backward()  # no anomaly mode here: NaN propagates
        results["grad"] = to_np(x.grad)[0]
        with detect_anomaly():
            results["inner"] = is_anomaly_enabled()

    with detect_anomaly():
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert is_anomaly_enabled()  # the worker's own `with` did not reset this thread's mode
    assert results["enabled"] is False and np.isnan(results["grad"]) and results["inner"] is True
    assert not is_anomaly_enabled()


# ------------------------------------------------------------------ errors raised in backward
class Boom(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        raise ValueError("boom")


class CodedError(Exception):
    """An exception whose constructor does not take the message: notes must not rebuild it."""

    def __init__(self, code: int) -> None:
        super().__init__(f"failed with code {code}")
        self.code = code


class CodedBoom(Boom):
    @staticmethod
    def backward(ctx, g):
        raise CodedError(7)


def test_user_backward_exception_keeps_its_type_and_names_the_site():
    x = leaf([1.0, 2.0])
    y = Boom.apply(x)  # site: boom
    with pytest.raises(ValueError) as info:
        y.sum().backward()
    assert info.value.args == ("boom",)  # the user's own exception, message unchanged
    assert_points_at(info, "Boom", "boom", "test_user_backward_exception_keeps_its_type_and_names_the_site")


def test_exception_with_unusual_constructor_is_annotated_in_place():
    x = leaf([1.0])
    y = CodedBoom.apply(x)  # site: coded
    with pytest.raises(CodedError) as info:
        y.sum().backward()
    assert info.value.code == 7 and str(info.value) == "failed with code 7"
    assert_points_at(info, "CodedBoom", "coded", "test_exception_with_unusual_constructor_is_annotated_in_place")


def test_without_exception_notes_the_message_carries_the_site():
    """Python 3.10 has no `add_note`: the site is appended to a one-string message instead."""

    class NoNotes(RuntimeError):
        def __getattribute__(self, name: str):
            if name == "add_note":
                raise AttributeError(name)
            return super().__getattribute__(name)

    x = leaf([1.0])
    y = x * 2.0  # site: nonotes
    error = NoNotes("bad gradient")
    _point_at_forward(error, y.grad_fn)
    assert str(error) == f"bad gradient\nRaised in the backward of Mul, created at {site_of('nonotes', 'test_without_exception_notes_the_message_carries_the_site')}"


def test_wrong_number_of_gradients_names_the_site():
    class TwoGrads(Function):
        @staticmethod
        def forward(ctx, x):
            return x + 1.0

        @staticmethod
        def backward(ctx, g):
            return g, g

    x = leaf([1.0, 2.0])
    y = TwoGrads.apply(x)  # site: twograds
    with pytest.raises(RuntimeError, match=r"TwoGrads\.backward returned 2 gradients, expected 1") as info:
        y.sum().backward()
    assert_points_at(info, "TwoGrads", "twograds", "test_wrong_number_of_gradients_names_the_site")


def test_gradient_of_wrong_shape_names_the_site():
    """The engine's reduction of the gradient to the input's shape fails: still this op's fault."""

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x + 1.0

        @staticmethod
        def backward(ctx, g):
            return pyzen.ones(4)

    x = leaf([1.0, 2.0, 3.0])
    y = WrongShape.apply(x)  # site: wrongshape
    with pytest.raises(Exception) as info:
        y.sum().backward()
    assert_points_at(info, "WrongShape", "wrongshape", "test_gradient_of_wrong_shape_names_the_site")


def test_inplace_modification_names_the_node_that_saved_the_tensor():
    x = leaf([0.1, 0.2])
    a = x * 1.0
    b = a.sin()  # site: sin
    a.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
        b.sum().backward()
    assert_points_at(info, "Sin", "sin", "test_inplace_modification_names_the_node_that_saved_the_tensor")


def test_inplace_modification_seen_by_saved_tensors_names_the_user_function():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2.0 * x * g

    x = leaf([1.0, 2.0])
    a = x * 1.0
    y = Square.apply(a)  # site: square
    a.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
        y.sum().backward()
    assert_points_at(info, "Square", "square", "test_inplace_modification_seen_by_saved_tensors_names_the_user_function")


# ------------------------------------------------------------------ which frame is the site
def _inner_helper(t: pyzen.Tensor) -> pyzen.Tensor:
    return t.sqrt()  # site: inner


def _outer_helper(t: pyzen.Tensor) -> pyzen.Tensor:
    return _inner_helper(t) * 2.0


def test_site_is_the_innermost_user_frame():
    x = leaf([-4.0])
    y = _outer_helper(x).sum()
    with detect_anomaly(), pytest.raises(RuntimeError, match="'Sqrt' returned nan") as info:
        y.backward()
    assert_points_at(info, "Sqrt", "inner", "_inner_helper")


def test_site_skips_pyzen_modules_but_not_user_modules():
    """Linear's matmul is made inside pyzen.nn: the site is the user's call of the module,
    or the user's own `forward` when a user Module calls it."""
    layer = pyzen.nn.Linear(3, 2)

    class Net(pyzen.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return self.layer(x) * 3.0  # site: net

    x = pyzen.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    y = layer(x)  # site: linear
    assert "{}:{} (in {})".format(*y.grad_fn._site) == site_of("linear", "test_site_skips_pyzen_modules_but_not_user_modules")
    z = Net()(x)
    assert "{}:{} (in {})".format(*z.grad_fn._site) == site_of("net", "forward")
    assert "{}:{} (in {})".format(*z.grad_fn.edges[0][0]._site) == site_of("net", "forward")


def test_example_code_inside_the_package_counts_as_user_code():
    from pyzen.examples.gpt import model

    config = model.GPTConfig(block_size=4, vocab_size=8, n_layer=1, n_head=1, n_embd=4)
    _, loss = model.GPT(config)(pyzen.zeros(1, 4, dtype=pyzen.int64), pyzen.zeros(1, 4, dtype=pyzen.int64))
    filename, lineno, function = loss.grad_fn._site
    assert filename == model.__file__ and function == "forward"


# ------------------------------------------------------------------ cost and lifetime
def test_no_site_is_recorded_when_nothing_is_recorded(monkeypatch):
    def fail():
        raise AssertionError("the call site was looked up for an op that records nothing")

    monkeypatch.setattr(function_module, "_user_site", fail)
    x = leaf([1.0, 2.0])
    with pyzen.no_grad():
        assert (x * 2.0).grad_fn is None
    assert (pyzen.tensor([1.0]) * 2.0).grad_fn is None  # no input requires grad
    assert (Boom.apply(pyzen.tensor([1.0]))).grad_fn is None


def test_site_holds_no_frame_so_user_locals_are_freed():
    """A stored frame or traceback would keep every local of the forward's caller alive for as
    long as the graph: here a large tensor that is not part of the graph at all."""

    def forward(x: pyzen.Tensor) -> tuple:
        big = pyzen.zeros(1000, 1000)
        return x * 2.0, weakref.ref(big)

    gc.disable()  # freed by reference counting alone: no reference cycle either
    try:
        x = leaf([1.0, 2.0])
        y, big = forward(x)
        assert y.grad_fn._site[2] == "forward"
        assert all(type(v) in (str, int) for v in y.grad_fn._site)
        assert big() is None
        y.sum().backward()
        assert big() is None
    finally:
        gc.enable()


def test_graph_is_freed_after_backward_without_the_garbage_collector():
    gc.disable()
    try:
        x = leaf([1.0, 2.0])
        y = (x.sqrt() * 3.0).sum()
        node = weakref.ref(y.grad_fn)
        y.backward()
        del y
        assert node() is None
    finally:
        gc.enable()
