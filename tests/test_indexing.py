"""__getitem__ / __setitem__ forms (values and gradients) and scatter-add backward of
gather / index_select / embedding with repeated indices, against NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
from conftest import assert_np_close, to_np

F64 = pyzen.float64
A = np.arange(60, dtype=np.float64).reshape(3, 4, 5) / 7.0


def _idx_for_numpy(key):
    """Replace pyzen tensors in an index key with NumPy arrays."""
    if isinstance(key, tuple):
        return tuple(_idx_for_numpy(k) for k in key)
    if isinstance(key, pyzen.Tensor):
        return to_np(key)
    return key


GET_KEYS = {
    "int": lambda: 1,
    "neg_int": lambda: -1,
    "int_int": lambda: (2, 3),
    "int_int_int": lambda: (0, -1, 4),
    "slice": lambda: slice(1, 3),
    "slice_step": lambda: (slice(None), slice(None, None, 2)),
    "slice_neg_bounds": lambda: (slice(-2, None), slice(1, -1)),
    "slice_step_start": lambda: (slice(None), slice(1, 4, 2), slice(0, 5, 3)),
    "slice_empty": lambda: slice(2, 2),
    "slice_past_end": lambda: slice(1, 100),
    "none": lambda: None,
    "none_middle": lambda: (slice(None), None, 1),
    "ellipsis": lambda: (Ellipsis, 2),
    "ellipsis_none": lambda: (0, Ellipsis, None),
    "int_slice": lambda: (1, slice(0, 2)),
    "list": lambda: [2, 0, 2],
    "list_second_dim": lambda: (slice(None), [3, 1]),
    "two_lists": lambda: ([0, 2], [1, 3]),
    "long_tensor": lambda: pyzen.tensor([1, 1, 0]),
    "long_tensor_2d": lambda: pyzen.tensor([[0, 2], [1, 1]]),
    "long_tensor_dim2": lambda: (Ellipsis, pyzen.tensor([4, 0, 4])),
    "bool_mask_full": lambda: pyzen.tensor(A > 4.0),
    "bool_mask_rows": lambda: pyzen.tensor([True, False, True]),
    "bool_mask_2d": lambda: pyzen.tensor(A[:, :, 0] > 2.0),
    "int_then_list": lambda: (1, [0, 3]),
    "0d_long_tensor": lambda: pyzen.tensor(2),
}


@pytest.mark.parametrize("name", sorted(GET_KEYS))
def test_getitem_matches_numpy(name):
    key = GET_KEYS[name]()
    x = pyzen.tensor(A, dtype=F64)
    got = x[key]
    want = A[_idx_for_numpy(key)]
    assert isinstance(got, pyzen.Tensor)
    assert got.shape == want.shape, f"{name}: {tuple(got.shape)} != {want.shape}"
    assert got.dtype == F64
    assert_np_close(to_np(got), want, 0, 0, what=name)


@pytest.mark.parametrize("name", sorted(GET_KEYS))
def test_getitem_gradient_scatters(name):
    key = GET_KEYS[name]()
    npkey = _idx_for_numpy(key)
    x = pyzen.tensor(A, dtype=F64, requires_grad=True)
    out = x[key]
    g = np.random.default_rng(3).uniform(-1, 1, A[npkey].shape)
    (out * pyzen.tensor(g, dtype=F64)).sum().backward()
    want = np.zeros_like(A)
    np.add.at(want, npkey, g)
    assert x.grad.shape == A.shape
    assert_np_close(to_np(x.grad), want, 1e-12, 1e-12, what=name)


@pytest.mark.parametrize("name", ["slice_step", "list", "long_tensor_2d", "bool_mask_rows", "ellipsis_none"])
def test_getitem_gradcheck(name):
    key = GET_KEYS[name]()
    x = pyzen.tensor(A[:, :3, :2].copy(), dtype=F64, requires_grad=True)
    assert pyzen.autograd.gradcheck(lambda t: t[key] * t[key], (x,))


def test_getitem_basic_indexing_returns_view():
    x = pyzen.zeros(3, 4)
    v = x[1:, ::2]
    v.fill_(1.0)
    want = np.zeros((3, 4))
    want[1:, ::2] = 1.0
    np.testing.assert_array_equal(to_np(x), want)


def test_getitem_on_non_contiguous_input():
    base = np.arange(12.0).reshape(3, 4)
    x = pyzen.tensor(base).T
    assert_np_close(to_np(x[1]), base.T[1], 0, 0)
    assert_np_close(to_np(x[[0, 3], 1:]), base.T[[0, 3], 1:], 0, 0)


# ------------------------------------------------------------------ setitem
SET_CASES = {
    "int_scalar": (lambda: 1, lambda: 1.5),
    "neg_int": (lambda: -1, lambda: -2.0),
    "slice_tensor": (lambda: (slice(None), 1), lambda: np.array([[1.0, 2.0, 3.0, 4.0, 5.0]] * 3)),
    "slice_step_scalar": (lambda: (slice(1, 3), slice(None, None, 2)), lambda: 9.0),
    "broadcast_row": (lambda: 0, lambda: np.arange(5.0)),
    "ellipsis": (lambda: (Ellipsis, 0), lambda: 4.0),
    "list": (lambda: [0, 2], lambda: np.full((2, 4, 5), 3.0)),
    "long_tensor": (lambda: (slice(None), pyzen.tensor([3, 0])), lambda: -1.0),
    "bool_mask": (lambda: pyzen.tensor(A > 5.0), lambda: 0.0),
    "bool_mask_rows": (lambda: pyzen.tensor([False, True, True]), lambda: np.arange(20.0).reshape(4, 5)),
    "none": (lambda: (None, 1), lambda: 7.0),
}


@pytest.mark.parametrize("name", sorted(SET_CASES))
def test_setitem_matches_numpy(name):
    kf, vf = SET_CASES[name]
    key, value = kf(), vf()
    x = pyzen.tensor(A, dtype=F64)
    v0 = x._version
    x[key] = pyzen.tensor(value, dtype=F64) if isinstance(value, np.ndarray) else value
    want = A.copy()
    npkey = _idx_for_numpy(key)
    want[npkey] = value
    assert_np_close(to_np(x), want, 0, 0, what=name)
    assert x._version > v0


def test_setitem_casts_value_to_tensor_dtype():
    x = pyzen.zeros(3, dtype=pyzen.int64)
    x[1] = 7
    x[2] = pyzen.tensor(2.9)
    assert x.dtype == pyzen.int64 and x.tolist() == [0, 7, 2]


def test_setitem_gradients():
    a = np.arange(12.0).reshape(3, 4) / 5.0
    w = np.random.default_rng(1).uniform(-1, 1, (3, 4))
    x = pyzen.tensor(a, dtype=F64, requires_grad=True)
    y = pyzen.tensor([0.5, -0.5, 1.0, 2.0], dtype=F64, requires_grad=True)
    c = x.clone()
    c[1] = y * 2.0
    (c * pyzen.tensor(w, dtype=F64)).sum().backward()
    gx = w.copy()
    gx[1] = 0.0
    assert_np_close(to_np(x.grad), gx, 1e-12, 0)
    assert_np_close(to_np(y.grad), 2.0 * w[1], 1e-12, 0)


def test_setitem_gradcheck():
    def f(x, y):
        c = x * 1.0
        c[:, ::2] = y.exp()
        c[0, 1] = c[0, 1] * 3.0
        return c * c

    rng = np.random.default_rng(2)
    x = pyzen.tensor(rng.uniform(-1, 1, (2, 4)), dtype=F64, requires_grad=True)
    y = pyzen.tensor(rng.uniform(-1, 1, (2, 2)), dtype=F64, requires_grad=True)
    assert pyzen.autograd.gradcheck(f, (x, y))


def test_setitem_on_leaf_requiring_grad_raises():
    x = pyzen.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 1.0


# ------------------------------------------------------------------ scatter-add backward
def test_gather_backward_scatter_adds_repeated_indices():
    rng = np.random.default_rng(4)
    a = rng.uniform(-1, 1, (3, 4))
    idx = np.array([[0, 0, 3, 0, 1], [2, 2, 2, 2, 2], [1, 3, 1, 3, 0]])
    g = rng.uniform(-1, 1, idx.shape)
    x = pyzen.tensor(a, dtype=F64, requires_grad=True)
    out = pyzen.gather(x, 1, pyzen.tensor(idx))
    assert_np_close(to_np(out), np.take_along_axis(a, idx, 1), 0, 0)
    (out * pyzen.tensor(g, dtype=F64)).sum().backward()
    want = np.zeros_like(a)
    np.add.at(want, (np.arange(3)[:, None], idx), g)
    assert_np_close(to_np(x.grad), want, 1e-12, 1e-15)


def test_index_select_backward_scatter_adds_repeated_indices():
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, (4, 3))
    idx = np.array([1, 1, 3, 1, 0, 3])
    g = rng.uniform(-1, 1, (6, 3))
    x = pyzen.tensor(a, dtype=F64, requires_grad=True)
    out = pyzen.index_select(x, 0, pyzen.tensor(idx))
    assert_np_close(to_np(out), a[idx], 0, 0)
    (out * pyzen.tensor(g, dtype=F64)).sum().backward()
    want = np.zeros_like(a)
    np.add.at(want, idx, g)
    assert_np_close(to_np(x.grad), want, 1e-12, 1e-15)
    # along dim 1
    x2 = pyzen.tensor(a, dtype=F64, requires_grad=True)
    idx2 = np.array([2, 2, 0, 2])
    g2 = rng.uniform(-1, 1, (4, 4))
    (pyzen.index_select(x2, 1, pyzen.tensor(idx2)) * pyzen.tensor(g2, dtype=F64)).sum().backward()
    want2 = np.zeros_like(a)
    np.add.at(want2.T, idx2, g2.T)
    assert_np_close(to_np(x2.grad), want2, 1e-12, 1e-15)


def test_embedding_backward_scatter_adds_repeated_indices():
    rng = np.random.default_rng(6)
    w = rng.uniform(-1, 1, (6, 4))
    idx = np.array([[0, 5, 0], [2, 0, 5]])
    g = rng.uniform(-1, 1, (2, 3, 4))
    weight = pyzen.tensor(w, dtype=F64, requires_grad=True)
    out = pyzen.embedding(pyzen.tensor(idx), weight)
    assert out.shape == (2, 3, 4)
    assert_np_close(to_np(out), w[idx], 0, 0)
    (out * pyzen.tensor(g, dtype=F64)).sum().backward()
    want = np.zeros_like(w)
    np.add.at(want, idx, g)
    assert_np_close(to_np(weight.grad), want, 1e-12, 1e-15)
    assert to_np(weight.grad)[[1, 3, 4]].tolist() == [[0.0] * 4] * 3


def test_long_tensor_getitem_backward_with_repeats():
    x = pyzen.tensor([1.0, 2.0, 3.0], dtype=F64, requires_grad=True)
    x[pyzen.tensor([0, 0, 2, 0])].sum().backward()
    assert to_np(x.grad).tolist() == [3.0, 0.0, 1.0]


# ------------------------------------------------------------------ hypothesis: basic slicing
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _slices(n):
    return st.one_of(
        st.integers(-n, n - 1) if n > 0 else st.just(slice(None)),
        st.builds(slice, st.one_of(st.none(), st.integers(-n - 2, n + 2)),
                  st.one_of(st.none(), st.integers(-n - 2, n + 2)),
                  st.one_of(st.none(), st.integers(1, 3))),
    )


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=3), data=st.data())
def test_random_basic_slicing(shape, data):
    key = tuple(data.draw(_slices(n), label=f"dim{i}") for i, n in enumerate(shape))
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    x = pyzen.tensor(a, dtype=F64, requires_grad=True)
    got = x[key]
    want = a[key]
    assert got.shape == want.shape
    np.testing.assert_array_equal(to_np(got), want)
    (got * 2.0).sum().backward()
    g = np.zeros_like(a)
    g[key] += 2.0
    np.testing.assert_array_equal(to_np(x.grad), g)
