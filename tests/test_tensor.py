"""Tensor creation, attributes, Python protocols, dtypes and promotion, in-place ops."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pyzen
from conftest import assert_np_close, to_np


# ------------------------------------------------------------------ dtypes
def test_dtype_aliases_and_default():
    assert pyzen.float is pyzen.float32 or pyzen.float == pyzen.float32
    assert pyzen.double == pyzen.float64
    assert pyzen.long == pyzen.int64
    assert pyzen.float32 != pyzen.float64
    assert pyzen.zeros(2).dtype == pyzen.float32
    assert pyzen.tensor(1.5).dtype == pyzen.float32


@pytest.mark.parametrize("data,dtype,np_dtype", [
    ([1.0, 2.5], pyzen.float32, np.float32),
    ([1, 2, 3], pyzen.int64, np.int64),
    ([True, False], pyzen.bool, np.bool_),
    ([1, 2.5], pyzen.float32, np.float32),
    ([[1, 2], [3, 4]], pyzen.int64, np.int64),
    (7, pyzen.int64, np.int64),
    (True, pyzen.bool, np.bool_),
])
def test_tensor_infers_dtype(data, dtype, np_dtype):
    t = pyzen.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.array(data, dtype=np_dtype))
    assert t.numpy().dtype == np_dtype


def test_tensor_from_numpy_keeps_dtype_and_copies():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = pyzen.tensor(a)
    assert t.dtype == pyzen.float64 and t.shape == (2, 3)
    a[0, 0] = 100.0
    assert t[0, 0].item() == 0.0  # pyzen.tensor copies
    assert pyzen.tensor(np.array([1, 2], dtype=np.int64)).dtype == pyzen.int64
    assert pyzen.tensor(np.array([1.0], dtype=np.float32)).dtype == pyzen.float32


def test_tensor_explicit_dtype_and_requires_grad():
    t = pyzen.tensor([1, 2], dtype=pyzen.float64, requires_grad=True)
    assert t.dtype == pyzen.float64 and t.requires_grad and t.is_leaf and t.grad is None
    np.testing.assert_array_equal(t.detach().numpy(), [1.0, 2.0])


def test_from_numpy_is_zero_copy():
    a = np.zeros((2, 3), dtype=np.float32)
    t = pyzen.from_numpy(a)
    assert t.dtype == pyzen.float32 and t.shape == (2, 3)
    a[1, 2] = 5.0
    assert t[1, 2].item() == 5.0
    t.add_(1.0)
    assert a[0, 0] == 1.0


def test_as_tensor():
    a = np.ones(3, dtype=np.float64)
    t = pyzen.as_tensor(a)
    assert t.dtype == pyzen.float64
    np.testing.assert_array_equal(to_np(t), a)
    t2 = pyzen.as_tensor([1, 2], dtype=pyzen.float32)
    assert t2.dtype == pyzen.float32
    x = pyzen.ones(2)
    assert pyzen.as_tensor(x) is x


@pytest.mark.parametrize("fn,value", [(pyzen.zeros, 0.0), (pyzen.ones, 1.0)])
def test_zeros_ones(fn, value):
    for t in (fn(2, 3), fn((2, 3)), fn([2, 3])):
        assert t.shape == (2, 3) and t.dtype == pyzen.float32
        np.testing.assert_array_equal(to_np(t), np.full((2, 3), value))
    assert fn(4, dtype=pyzen.int64).dtype == pyzen.int64
    assert fn(()).shape == () and fn(()).numel() == 1
    assert fn(0, 3).shape == (0, 3)
    t = fn(2, requires_grad=True)
    assert t.requires_grad and t.is_leaf


def test_empty_full():
    assert pyzen.empty(2, 3).shape == (2, 3)
    assert pyzen.empty((4,), dtype=pyzen.float64).dtype == pyzen.float64
    t = pyzen.full((2, 2), 3.5)
    assert t.dtype == pyzen.float32
    np.testing.assert_array_equal(to_np(t), np.full((2, 2), 3.5))
    assert pyzen.full((2,), 7, dtype=pyzen.int64).dtype == pyzen.int64
    assert pyzen.full((2,), 1.0, dtype=pyzen.float64).dtype == pyzen.float64
    assert np.isnan(to_np(pyzen.full((3,), float("nan")))).all()


def test_full_infers_dtype_from_fill_value():
    assert pyzen.full((2,), 7).dtype == pyzen.int64
    assert pyzen.full((2,), True).dtype == pyzen.bool


@pytest.mark.parametrize("args,kwargs,expected,dtype", [
    ((5,), {}, np.arange(5), pyzen.int64),
    ((2, 7), {}, np.arange(2, 7), pyzen.int64),
    ((1, 10, 3), {}, np.arange(1, 10, 3), pyzen.int64),
    ((0.0, 1.0, 0.25), {}, np.arange(0, 1, 0.25), pyzen.float32),
    ((5,), {"dtype": pyzen.float64}, np.arange(5.0), pyzen.float64),
    ((3.0,), {}, np.arange(3.0), pyzen.float32),
    ((5, 0, -2), {}, np.array([5, 3, 1]), pyzen.int64),
    ((0,), {}, np.arange(0), pyzen.int64),
])
def test_arange(args, kwargs, expected, dtype):
    t = pyzen.arange(*args, **kwargs)
    assert t.dtype == dtype
    assert t.shape == expected.shape
    assert_np_close(to_np(t), expected, 0, 1e-7)


def test_linspace_eye():
    t = pyzen.linspace(0, 1, 5)
    assert t.dtype == pyzen.float32 and t.shape == (5,)
    assert_np_close(to_np(t), np.linspace(0, 1, 5), 1e-7, 1e-7)
    assert_np_close(to_np(pyzen.linspace(-2.0, 3.0, 11)), np.linspace(-2, 3, 11), 1e-6, 1e-6)
    assert pyzen.linspace(0, 1, 1).tolist() == [0.0]
    np.testing.assert_array_equal(to_np(pyzen.eye(3)), np.eye(3))
    np.testing.assert_array_equal(to_np(pyzen.eye(2, 4)), np.eye(2, 4))
    assert pyzen.eye(3).dtype == pyzen.float32


def test_like_constructors():
    x = pyzen.zeros(2, 3, dtype=pyzen.float64)
    for fn in (pyzen.zeros_like, pyzen.ones_like, pyzen.empty_like, pyzen.rand_like, pyzen.randn_like):
        y = fn(x)
        assert y.shape == (2, 3) and y.dtype == pyzen.float64, fn.__name__
        assert not y.requires_grad
    np.testing.assert_array_equal(to_np(pyzen.ones_like(x)), np.ones((2, 3)))
    np.testing.assert_array_equal(to_np(pyzen.full_like(x, 2.5)), np.full((2, 3), 2.5))
    assert pyzen.zeros_like(x, dtype=pyzen.int64).dtype == pyzen.int64
    assert pyzen.ones_like(pyzen.arange(3)).dtype == pyzen.int64


# ------------------------------------------------------------------ attributes
def test_attributes():
    x = pyzen.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4)
    assert isinstance(x.shape, pyzen.Size) and isinstance(x.shape, tuple)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.dim() == 3 and x.ndim == 3 and x.numel() == 24
    assert str(x.device) == "cpu"
    assert x.requires_grad is False and x.grad is None and x.is_leaf and x.grad_fn is None
    s = pyzen.tensor(3.0)
    assert s.shape == () and s.dim() == 0 and s.numel() == 1


def test_item_tolist_numpy():
    assert pyzen.tensor(2.5).item() == 2.5
    assert isinstance(pyzen.tensor(3).item(), int)
    assert isinstance(pyzen.tensor(2.5).item(), float)
    assert isinstance(pyzen.tensor(True).item(), bool)
    assert pyzen.tensor([[7.0]]).item() == 7.0
    assert pyzen.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert pyzen.tensor(5).tolist() == 5
    a = pyzen.tensor([1.5, 2.5]).numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32


def test_repr_and_format():
    r = repr(pyzen.tensor([1.0, 2.0]))
    assert "tensor(" in r and "1." in r and "2." in r
    assert "requires_grad=True" in repr(pyzen.tensor([1.0], requires_grad=True))
    assert "float64" in repr(pyzen.tensor([1.0], dtype=pyzen.float64))
    assert "tensor(" in str(pyzen.zeros(2, 2))
    assert format(pyzen.tensor(math.pi), ".3f") == "3.142"
    assert f"{pyzen.tensor(2.0, dtype=pyzen.float64):.2f}" == "2.00"


def test_bool_protocol():
    assert bool(pyzen.tensor(1.0)) is True
    assert bool(pyzen.tensor([0.0])) is False
    assert bool(pyzen.tensor([[True]])) is True
    with pytest.raises(RuntimeError):
        bool(pyzen.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError):
        bool(pyzen.zeros(0))
    with pytest.raises(RuntimeError):
        if pyzen.ones(2) > 0:
            pass


def test_index_int_float_protocols():
    assert [10, 20, 30][pyzen.tensor(1)] == 20
    assert list(range(10))[pyzen.tensor(2):pyzen.tensor(5)] == [2, 3, 4]
    with pytest.raises(TypeError):
        [1, 2][pyzen.tensor(1.0)]
    assert float(pyzen.tensor([2.5])) == 2.5
    assert int(pyzen.tensor(3.9)) == 3
    assert int(pyzen.tensor(-3.9)) == -3
    with pytest.raises((RuntimeError, ValueError)):
        float(pyzen.ones(2))
    with pytest.raises((RuntimeError, ValueError)):
        pyzen.ones(2).item()


def test_len_and_iter():
    x = pyzen.tensor([[1, 2], [3, 4], [5, 6]])
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3 and all(isinstance(r, pyzen.Tensor) for r in rows)
    assert rows[2].tolist() == [5, 6]
    assert [int(v) for v in pyzen.tensor([4, 5])] == [4, 5]
    with pytest.raises(TypeError):
        len(pyzen.tensor(1.0))
    with pytest.raises(TypeError):
        iter(pyzen.tensor(1.0))
    assert list(pyzen.zeros(0, 2)) == []


# ------------------------------------------------------------------ copies and views
def test_detach_clone_contiguous():
    x = pyzen.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    with pyzen.no_grad():
        d.mul_(2.0)  # detach shares storage
    assert x.tolist() == [2.0, 4.0, 6.0]
    c = x.clone()
    assert c.requires_grad and not c.is_leaf
    c2 = x.detach().clone()
    c2.add_(1.0)
    assert x.tolist() == [2.0, 4.0, 6.0]
    t = pyzen.arange(6).reshape(2, 3).T
    assert not t.is_contiguous()
    tc = t.contiguous()
    assert tc.is_contiguous() and tc.tolist() == [[0, 3], [1, 4], [2, 5]]
    a = pyzen.ones(3)
    assert a.is_contiguous() and a.contiguous() is a


def test_views_share_storage():
    x = pyzen.zeros(2, 3)
    v = x.view(6)
    v[4] = 1.0
    assert x[1, 1].item() == 1.0
    x.transpose(0, 1)[2, 0] = 2.0
    assert x[0, 2].item() == 2.0
    x[:, 1:][0].fill_(5.0)
    assert x.tolist() == [[0.0, 5.0, 5.0], [0.0, 1.0, 0.0]]


def test_integer_index_to_0d_is_a_view():
    x = pyzen.zeros(3)
    x[1].fill_(5.0)
    y = pyzen.zeros(2, 2)
    y[1, 1].add_(2.0)
    v = y[0, 0]
    v += 1.0
    assert x.tolist() == [0.0, 5.0, 0.0]
    assert y.tolist() == [[1.0, 0.0], [0.0, 2.0]]


@pytest.mark.parametrize("method,dtype", [("float", pyzen.float32), ("double", pyzen.float64),
                                          ("long", pyzen.int64), ("bool", pyzen.bool)])
def test_conversion_methods(method, dtype):
    x = pyzen.tensor([0.0, 1.7, -2.2])
    y = getattr(x, method)()
    assert y.dtype == dtype
    np.testing.assert_array_equal(to_np(y), np.array([0.0, 1.7, -2.2], dtype=np.float32).astype(
        {"float": np.float32, "double": np.float64, "long": np.int64, "bool": np.bool_}[method]))


def test_to():
    x = pyzen.tensor([1.5, 2.5])
    assert x.to(pyzen.float64).dtype == pyzen.float64
    assert x.to(pyzen.int64).tolist() == [1, 2]
    y = x.to("cpu")
    assert str(y.device) == "cpu"
    assert x.to(pyzen.float32) is x
    assert x.to("cpu") is x
    z = pyzen.tensor([1.0], requires_grad=True).to(pyzen.float64)
    assert z.requires_grad and not z.is_leaf
    z.sum().backward()


# ------------------------------------------------------------------ promotion
F32, F64, I64, BOOL = pyzen.float32, pyzen.float64, pyzen.int64, pyzen.bool


@pytest.mark.parametrize("a,b,expected", [
    (lambda: pyzen.ones(2), lambda: pyzen.ones(2, dtype=F64), F64),
    (lambda: pyzen.ones(2, dtype=I64), lambda: pyzen.ones(2), F32),
    (lambda: pyzen.ones(2, dtype=I64), lambda: 2.5, F32),
    (lambda: pyzen.ones(2), lambda: 2.5, F32),
    (lambda: pyzen.ones(2, dtype=F64), lambda: 2.5, F64),
    (lambda: pyzen.ones(2), lambda: pyzen.tensor(2.0, dtype=F64), F32),
    (lambda: pyzen.ones(2, dtype=I64), lambda: 3, I64),
    (lambda: pyzen.ones(2, dtype=I64), lambda: pyzen.ones(2, dtype=I64), I64),
    (lambda: pyzen.ones(2), lambda: 3, F32),
    (lambda: pyzen.tensor(1.0), lambda: pyzen.tensor(1.0, dtype=F64), F64),
    (lambda: pyzen.arange(3), lambda: pyzen.tensor(1.5, dtype=F64), F64),
    (lambda: pyzen.ones(2, dtype=BOOL), lambda: pyzen.ones(2), F32),
])
def test_promotion_add_mul(a, b, expected):
    x, y = a(), b()
    assert (x + y).dtype == expected
    assert (y + x).dtype == expected
    assert (x * y).dtype == expected
    assert pyzen.add(x, y).dtype == expected


def test_integer_true_division_and_values():
    a = pyzen.tensor([1, 7, -7])
    b = pyzen.tensor([2, 2, 2])
    q = a / b
    assert q.dtype == F32
    np.testing.assert_array_equal(to_np(q), [0.5, 3.5, -3.5])
    assert (a / 2).dtype == F32
    assert (a + 0.5).tolist() == [1.5, 7.5, -6.5]
    assert (a * 2).tolist() == [2, 14, -14] and (a * 2).dtype == I64
    assert (a ** 2).dtype == I64 and (a ** 2).tolist() == [1, 49, 49]
    assert (a.float() ** 0.5).dtype == F32


def test_integer_and_bool_reductions():
    a = pyzen.arange(5)
    assert a.sum().dtype == I64 and a.sum().item() == 10
    b = pyzen.tensor([True, True, False])
    assert b.sum().dtype == I64 and b.sum().item() == 2
    assert a.max().dtype == I64 and a.max().item() == 4
    assert pyzen.cumsum(a, dim=0).dtype == I64
    assert pyzen.cumsum(a, dim=0).tolist() == [0, 1, 3, 6, 10]
    assert pyzen.argmax(pyzen.tensor([3, 9, 2])).item() == 1
    assert pyzen.prod(pyzen.tensor([2, 3, 4])).item() == 24


def test_arg_reductions_pick_first_of_ties():
    assert pyzen.argmax(pyzen.tensor([1.0, 3.0, 3.0])).item() == 1
    assert pyzen.argmin(pyzen.tensor([2.0, 1.0, 1.0, 5.0])).item() == 1
    r = pyzen.max(pyzen.tensor([[4.0, 4.0, 1.0], [0.0, 2.0, 2.0]]), dim=1)
    assert r.indices.tolist() == [0, 1] and r.values.tolist() == [4.0, 2.0]


def test_empty_and_ragged_tensor_literals():
    e = pyzen.tensor([])
    assert e.shape == (0,) and e.dtype == F32
    with pytest.raises((ValueError, TypeError)):
        pyzen.tensor([[1, 2], [3]])


def test_comparisons_return_bool():
    x = pyzen.tensor([1.0, 2.0, 3.0])
    for r in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2, 2 < x, pyzen.arange(3) == 1):
        assert r.dtype == BOOL
    assert (x > 2).tolist() == [False, False, True]
    assert (2 < x).tolist() == [False, False, True]
    assert (x == pyzen.tensor([1.0, 0.0, 3.0])).tolist() == [True, False, True]
    assert (x != 2).tolist() == [True, False, True]
    assert (x <= 2.0).tolist() == [True, True, False]


# ------------------------------------------------------------------ operators
def test_arithmetic_operators_with_scalars():
    a = np.array([[0.5, 1.5, 2.0], [3.0, -1.0, 0.25]])
    x = pyzen.tensor(a, dtype=F64)
    cases = {
        "x+2": (x + 2, a + 2), "2+x": (2 + x, 2 + a), "x-2": (x - 2, a - 2), "2-x": (2 - x, 2 - a),
        "x*3": (x * 3, a * 3), "3*x": (3 * x, 3 * a), "x/4": (x / 4, a / 4), "1/x": (1 / x, 1 / a),
        "x**2": (x ** 2, a ** 2), "2**x": (2 ** x, 2.0 ** a), "-x": (-x, -a), "abs": (abs(x), np.abs(a)),
        "x+x": (x + x, a + a), "x@xT": (x @ x.T, a @ a.T), "x/x": (x / x, a / a),
    }
    for k, (got, want) in cases.items():
        assert got.dtype == F64, k
        assert_np_close(to_np(got), want, 1e-12, 1e-12, what=k)


def test_operators_broadcast():
    a, b = np.arange(3.0).reshape(3, 1), np.arange(4.0)
    x, y = pyzen.tensor(a), pyzen.tensor(b)
    assert (x + y).shape == (3, 4)
    assert_np_close(to_np(x * y - y / 2), a * b - b / 2, 1e-6, 1e-6)


def test_bitwise_operators_on_bool():
    a = pyzen.tensor([True, True, False, False])
    b = pyzen.tensor([True, False, True, False])
    assert (a & b).tolist() == [True, False, False, False]
    assert (a | b).tolist() == [True, True, True, False]
    assert (a ^ b).tolist() == [False, True, True, False]
    assert (~a).tolist() == [False, False, True, True]
    assert (a & b).dtype == BOOL


# ------------------------------------------------------------------ in-place
def test_inplace_ops_values_return_self_and_version():
    x = pyzen.tensor([1.0, 2.0, 3.0])
    v0 = x._version
    steps = [
        (lambda: x.add_(1.0), [2.0, 3.0, 4.0]),
        (lambda: x.sub_(pyzen.tensor([1.0, 1.0, 1.0])), [1.0, 2.0, 3.0]),
        (lambda: x.mul_(2.0), [2.0, 4.0, 6.0]),
        (lambda: x.div_(pyzen.tensor(2.0)), [1.0, 2.0, 3.0]),
        (lambda: x.clamp_(1.5, 2.5), [1.5, 2.0, 2.5]),
        (lambda: x.clamp_(min=2.0), [2.0, 2.0, 2.5]),
        (lambda: x.masked_fill_(pyzen.tensor([True, False, False]), -1.0), [-1.0, 2.0, 2.5]),
        (lambda: x.fill_(7.0), [7.0, 7.0, 7.0]),
        (lambda: x.copy_(pyzen.tensor([4.0, 5.0, 6.0], dtype=F64)), [4.0, 5.0, 6.0]),
        (lambda: x.zero_(), [0.0, 0.0, 0.0]),
    ]
    for i, (op, want) in enumerate(steps):
        r = op()
        assert r is x, f"step {i}: in-place op must return self"
        assert x.tolist() == want, f"step {i}"
        assert x._version > v0, f"step {i}: _version did not increase"
        v0 = x._version
    assert x.dtype == F32


def test_inplace_broadcast_copy_and_operators():
    x = pyzen.zeros(2, 3)
    x.copy_(pyzen.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [[1.0, 2.0, 3.0]] * 2
    y = x
    v = x._version
    x += 1
    assert x is y and x._version > v
    x *= 2
    x -= pyzen.ones(3)
    x /= 2
    assert x.tolist() == [[1.5, 2.5, 3.5]] * 2


def test_normal_uniform_inplace():
    x = pyzen.empty(20000, dtype=F64)
    assert x.normal_(3.0, 2.0) is x
    a = to_np(x)
    assert abs(a.mean() - 3.0) < 0.1 and abs(a.std() - 2.0) < 0.1
    assert x.uniform_(-2.0, 5.0) is x
    a = to_np(x)
    assert a.min() >= -2.0 and a.max() < 5.0
    assert abs(a.mean() - 1.5) < 0.1
    x.normal_()
    assert abs(to_np(x).std() - 1.0) < 0.05


def test_inplace_on_leaf_requiring_grad_raises_and_no_grad_allows():
    w = pyzen.ones(3, requires_grad=True)
    for op in (lambda: w.add_(1.0), lambda: w.mul_(2.0), lambda: w.zero_(), lambda: w.fill_(1.0)):
        with pytest.raises(RuntimeError, match="leaf"):
            op()
    with pyzen.no_grad():
        w.sub_(0.5)
        w.mul_(2.0)
    assert w.tolist() == [1.0, 1.0, 1.0]
    assert w.requires_grad and w.is_leaf


def test_inplace_on_non_leaf_is_differentiated():
    x = pyzen.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True)
    a = x * 2.0
    a.mul_(3.0)
    a.add_(1.0)
    (a * a).sum().backward()  # d/dx (6x+1)^2 = 12 (6x+1)
    assert_np_close(to_np(x.grad), 12 * (6 * np.array([1.0, -2.0, 3.0]) + 1), 1e-12, 1e-12)


def test_inf_and_nan_propagate_silently_like_pytorch():
    # Warnings are errors in this suite: NumPy's floating-point warnings must not leak out.
    x = pyzen.tensor([0.0, float("inf"), 1e38, -1.0], requires_grad=True)
    y = pyzen.tensor([float("inf"), 0.0, 10.0, 0.0])
    out = x * y + x / y - x
    got = out.detach().numpy()
    assert np.isnan(got[0]) and np.isnan(got[1]) and got[2] == np.inf and got[3] == -np.inf
    out.sum().backward()
    assert x.grad.shape == (4,)
