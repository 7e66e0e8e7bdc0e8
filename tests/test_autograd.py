"""Autograd: custom Functions, the engine, graph lifetime, grad modes, gradcheck itself."""
from __future__ import annotations

import re
import sys
import time

import numpy as np
import pytest

import pyzen
from conftest import assert_np_close, to_np

F64 = pyzen.float64


def leaf(values, dtype=F64):
    return pyzen.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=True)


# ------------------------------------------------------------------ custom Function
class Cube(pyzen.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3.0 * x * x


class ScaleAdd(pyzen.autograd.Function):
    """out = k * a + b; k is a Python float (gets None as its gradient)."""

    @staticmethod
    def forward(ctx, a, k, b):
        ctx.k = k
        return a * k + b

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None, g


class WrongMul(pyzen.autograd.Function):
    """x * y whose gradient for y is deliberately wrong at element 2."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        gy = (g * x).detach().numpy().copy()
        gy[2] *= 3.0
        return g * y, pyzen.tensor(gy, dtype=x.dtype)


def test_custom_function_forward_backward():
    a = np.array([0.5, -1.5, 2.0])
    x = leaf(a)
    y = Cube.apply(x)
    assert y.requires_grad and y.grad_fn is not None and not y.is_leaf
    assert_np_close(to_np(y), a**3, 1e-12, 0)
    y.sum().backward()
    assert_np_close(to_np(x.grad), 3 * a**2, 1e-12, 0)


def test_custom_function_non_tensor_argument_and_two_inputs():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    out = ScaleAdd.apply(a, 2.5, b)
    assert_np_close(to_np(out), [5.5, 9.0], 1e-12, 0)
    (out * pyzen.tensor([1.0, 10.0], dtype=F64)).sum().backward()
    assert_np_close(to_np(a.grad), [2.5, 25.0], 1e-12, 0)
    assert_np_close(to_np(b.grad), [1.0, 10.0], 1e-12, 0)


def test_custom_function_in_no_grad_does_not_record():
    x = leaf([1.0])
    with pyzen.no_grad():
        y = Cube.apply(x)
    assert not y.requires_grad and y.grad_fn is None


def test_custom_function_composes_with_builtin_ops():
    a = np.array([0.3, 0.7])
    x = leaf(a)
    (Cube.apply(x.sin()) * 2.0).sum().backward()
    assert_np_close(to_np(x.grad), 2 * 3 * np.sin(a) ** 2 * np.cos(a), 1e-12, 1e-14)


# ------------------------------------------------------------------ gradcheck itself
def test_gradcheck_passes_for_correct_function():
    x = leaf(np.random.default_rng(0).uniform(-1, 1, (2, 3)))
    assert pyzen.autograd.gradcheck(Cube.apply, (x,)) is True
    y = leaf([0.5, 1.0, 1.25])
    z = leaf([2.0, -1.0, 0.5])
    assert pyzen.autograd.gradcheck(lambda a, b: a * b + a.exp(), (y, z)) is True


def test_gradcheck_catches_wrong_backward():
    assert issubclass(pyzen.autograd.GradcheckError, RuntimeError)
    x = leaf([0.5, 1.0, 1.25])
    y = leaf([2.0, -1.0, 0.75])
    with pytest.raises(pyzen.autograd.GradcheckError) as info:
        pyzen.autograd.gradcheck(WrongMul.apply, (x, y), eps=1e-6, atol=1e-5, rtol=1e-3)
    msg = str(info.value)
    # names input 1 and element 2, and shows both values: the analytical one is 3x the
    # numerical one there (possibly both scaled by the same cotangent), so some pair of the
    # numbers in the message has ratio 3.
    assert re.search(r"input\D{0,20}1", msg), msg
    assert re.search(r"\b2\b", msg), msg
    nums = [float(v) for v in re.findall(r"-?\d+\.\d*(?:[eE][-+]?\d+)?", msg)]
    assert any(n != 0 and abs(a / n - 3.0) < 1e-4 for a in nums for n in nums), msg


def test_gradcheck_catches_wrong_builtin_style_gradient_of_one_input_only():
    class HalfGrad(pyzen.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 * g

    with pytest.raises(RuntimeError):
        pyzen.autograd.gradcheck(HalfGrad.apply, (leaf([1.0, 2.0]),))


# ------------------------------------------------------------------ engine
def test_shared_subexpression_accumulates():
    a = np.array([0.2, -0.4, 1.1])
    x = leaf(a)
    y = x * x
    z = y * x + y.sin() + x
    z.sum().backward()
    assert_np_close(to_np(x.grad), 3 * a**2 + np.cos(a**2) * 2 * a + 1, 1e-12, 1e-14)


def test_broadcast_gradients_are_reduced_to_input_shape():
    a = np.array([[1.0], [2.0], [3.0]])
    b = np.array([[0.5, -1.0, 2.0, 4.0]])
    x, y = leaf(a), leaf(b)
    s = leaf(2.0)
    (x * y * s).sum().backward()
    assert x.grad.shape == (3, 1) and y.grad.shape == (1, 4) and s.grad.shape == ()
    assert_np_close(to_np(x.grad), 2 * np.full((3, 1), b.sum()), 1e-12, 0)
    assert_np_close(to_np(y.grad), 2 * np.full((1, 4), a.sum()), 1e-12, 0)
    assert_np_close(to_np(s.grad), (a * b).sum(), 1e-12, 0)


def test_gradients_accumulate_over_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    assert_np_close(to_np(x.grad), [3.0 + 2.0, 3.0 + 4.0], 1e-12, 0)
    x.grad = None
    (x * 3.0).sum().backward()
    assert_np_close(to_np(x.grad), [3.0, 3.0], 1e-12, 0)
    x.grad.zero_()
    assert to_np(x.grad).tolist() == [0.0, 0.0]
    assert not x.grad.requires_grad


def test_backward_with_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2.0
    y.backward(pyzen.tensor([1.0, 0.5, -1.0], dtype=F64))
    assert_np_close(to_np(x.grad), [2.0, 1.0, -2.0], 1e-12, 0)


def test_backward_on_non_scalar_without_gradient_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        (x * 2.0).backward()


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        pyzen.ones(2).sum().backward()


def test_second_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    a = np.array([1.0, 2.0])
    x = leaf(a)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_np_close(to_np(x.grad), 2 * (np.exp(a) * (a + 1)), 1e-12, 0)


def test_leaf_and_non_leaf_properties():
    x = leaf([1.0])
    c = pyzen.ones(1)
    assert x.is_leaf and c.is_leaf and x.grad_fn is None
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert (c * 2).is_leaf and not (c * 2).requires_grad
    assert x.detach().is_leaf and not x.detach().requires_grad


def test_requires_grad_and_retain_grad():
    x = pyzen.tensor([1.0, 2.0], dtype=F64)
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    x.requires_grad = True
    h = x * 3.0
    h.retain_grad()
    (h * h).sum().backward()
    assert_np_close(to_np(h.grad), [6.0, 12.0], 1e-12, 0)
    assert_np_close(to_np(x.grad), [18.0, 36.0], 1e-12, 0)


def test_unused_leaf_gets_no_grad_and_constants_get_none():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    c = pyzen.tensor([5.0, 6.0], dtype=F64)
    _ = x * 2.0
    out = (w * c).sum()
    assert out.requires_grad
    out.backward()
    assert x.grad is None and c.grad is None
    assert_np_close(to_np(w.grad), [5.0, 6.0], 0, 0)


def test_backward_on_one_element_tensor_without_gradient():
    x = leaf([1.0, 2.0])
    y = (x * 3.0).sum(dim=0, keepdim=True)
    assert y.shape == (1,)
    y.backward()
    assert_np_close(to_np(x.grad), [3.0, 3.0], 0, 0)


def test_leaf_created_under_no_grad_can_require_grad():
    with pyzen.no_grad():
        w = pyzen.ones(2, requires_grad=True)
    assert w.requires_grad and w.is_leaf
    (w * 2).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0]


def test_detach_stops_gradient():
    x = leaf([2.0])
    (x.detach() * x + x).sum().backward()
    assert_np_close(to_np(x.grad), [3.0], 1e-12, 0)


def test_grad_dtype_matches_float32_leaf():
    x = pyzen.ones(3, requires_grad=True)
    (x * 2.0).sum().backward()
    assert x.grad.dtype == pyzen.float32 and x.grad.shape == (3,)


# ------------------------------------------------------------------ grad modes
def test_no_grad_context_manager():
    x = leaf([1.0])
    with pyzen.no_grad():
        y = x * 2
        z = x.exp()
    assert not y.requires_grad and y.grad_fn is None and not z.requires_grad
    assert (x * 2).requires_grad


def test_no_grad_decorator():
    @pyzen.no_grad()
    def f(t):
        return t * 2

    x = leaf([1.0])
    assert not f(x).requires_grad
    assert (x * 2).requires_grad


def test_enable_grad_inside_no_grad():
    x = leaf([1.0])
    with pyzen.no_grad():
        with pyzen.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad


def test_set_grad_enabled_function_and_context():
    x = leaf([1.0])
    with pyzen.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    pyzen.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        pyzen.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_no_grad_restores_mode_after_exception():
    x = leaf([1.0])
    with pytest.raises(ZeroDivisionError):
        with pyzen.no_grad():
            1 / 0
    assert (x * 2).requires_grad


# ------------------------------------------------------------------ long chains
def test_engine_is_iterative_100k_chain():
    x = leaf([1.0])
    y = x
    n = 100_000
    start = time.perf_counter()
    for _ in range(n):
        y = y * 1.00001
    y.sum().backward()
    elapsed = time.perf_counter() - start
    assert_np_close(to_np(x.grad), [1.00001**n], 1e-9, 0)
    assert sys.getrecursionlimit() <= 100_000
    assert elapsed < 60, f"100k-op chain took {elapsed:.1f}s"


# ------------------------------------------------------------------ version counter
def test_modified_saved_tensor_raises():
    x = leaf([0.1, 0.2])
    a = x * 1
    b = a.sin()  # saves a
    a.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_inplace_not_saved_is_fine():
    x = leaf([1.0, 2.0])
    a = x * 3.0
    b = a + 1.0  # add saves nothing
    a.mul_(2.0)
    b.sum().backward()
    assert_np_close(to_np(x.grad), [3.0, 3.0], 1e-12, 0)


def test_views_share_the_version_counter():
    """Changing a saved tensor through a view must not give silently wrong gradients: either
    the in-place op on the view is refused, or backward raises (PyTorch does the latter)."""
    x = leaf([[0.1, 0.2], [0.3, 0.4]])
    a = x * 1
    b = a.sin()  # saves a
    with pytest.raises(RuntimeError, match="inplace|in-place"):
        a[0].mul_(2)  # in-place on a view of a
        b.sum().backward()


def test_detached_alias_shares_the_version_counter():
    x = leaf([0.1, 0.2])
    a = x * 1
    b = a.sin()
    a.detach().mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_inplace_on_view_of_leaf_requiring_grad_raises():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(RuntimeError, match="leaf|view"):
        x[0].add_(1.0)
    with pytest.raises(RuntimeError, match="leaf|view"):
        x[0, 1].add_(1.0)  # 0-d view
    assert to_np(x).tolist() == [[1.0, 2.0], [3.0, 4.0]]


# ------------------------------------------------------------------ operators are differentiable
OPERATOR_FNS = {
    "rsub": lambda x: 2 - x,
    "rpow": lambda x: 2 ** x,
    "rdiv": lambda x: 1 / x,
    "pow_scalar": lambda x: x ** 3,
    "pow_tensor": lambda x: x ** (x * 0.5),
    "neg": lambda x: -x,
    "abs": lambda x: abs(x),
    "matmul": lambda x: x @ x.T,
    "mixed": lambda x: (x * 2 + 1) / (x - 3) - x.exp() * x.sum(),
    "getitem_setitem": lambda x: x[:, 1:] * x[:, :-1],
    "expand_repeat": lambda x: x[:1].expand(3, 3) * x.repeat(1, 1),
    "T_view_reshape": lambda x: x.T.reshape(9).view(3, 3) * x,
    "mean_var": lambda x: (x - x.mean(dim=0, keepdim=True)) / x.std(dim=0, keepdim=True),
    "softmax_matmul": lambda x: pyzen.softmax(x @ x.T, dim=-1) @ x,
}


@pytest.mark.parametrize("name", sorted(OPERATOR_FNS))
def test_operator_gradcheck(name):
    rng = np.random.default_rng(11)
    x = leaf(rng.uniform(0.5, 1.5, (3, 3)))
    assert pyzen.autograd.gradcheck(OPERATOR_FNS[name], (x,))


# ------------------------------------------------------------------ autograd.grad (optional API)
if hasattr(pyzen.autograd, "grad"):

    def test_autograd_grad():
        a = np.array([0.5, 1.5])
        x = leaf(a)
        y = (x * x * x).sum()
        (g,) = pyzen.autograd.grad(y, (x,))
        assert_np_close(to_np(g), 3 * a**2, 1e-12, 0)
        assert x.grad is None
        x2 = leaf(a)
        z = x2 * 2.0
        (g2,) = pyzen.autograd.grad(z, [x2], grad_outputs=pyzen.ones(2, dtype=F64))
        assert_np_close(to_np(g2), [2.0, 2.0], 1e-12, 0)


def test_gradcheck_refuses_non_finite_outputs_and_flags_perturbations_that_leave_the_domain():
    x = pyzen.tensor([0.0, 1.0], dtype=pyzen.float64, requires_grad=True)
    with pytest.raises(pyzen.autograd.GradcheckError, match="output 0 is not finite"):
        pyzen.autograd.gradcheck(lambda t: t.log(), (x,))
    near_zero = pyzen.tensor([1e-9, 1.0], dtype=pyzen.float64, requires_grad=True)  # x - eps < 0: sqrt is nan
    with pytest.raises(pyzen.autograd.GradcheckError, match=r"index \(0,\).*numerical nan"):
        pyzen.autograd.gradcheck(lambda t: t.sqrt(), (near_zero,))
