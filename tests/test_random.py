"""Random number generation: seeding, ranges, rough distribution shape."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
from conftest import to_np

GENERATORS = {
    "rand": lambda: pyzen.rand(4, 5),
    "randn": lambda: pyzen.randn(4, 5),
    "randint": lambda: pyzen.randint(0, 100, (20,)),
    "randperm": lambda: pyzen.randperm(20),
    "rand_like": lambda: pyzen.rand_like(pyzen.zeros(3, 3)),
    "randn_like": lambda: pyzen.randn_like(pyzen.zeros(3, 3, dtype=pyzen.float64)),
    "normal_": lambda: pyzen.empty(10).normal_(),
    "uniform_": lambda: pyzen.empty(10).uniform_(-1.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_manual_seed_reproduces(name):
    gen = GENERATORS[name]
    pyzen.manual_seed(123)
    a = to_np(gen())
    b = to_np(gen())
    pyzen.manual_seed(123)
    a2 = to_np(gen())
    b2 = to_np(gen())
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    assert not np.array_equal(a, b), "consecutive draws are identical"
    pyzen.manual_seed(124)
    assert not np.array_equal(to_np(gen()), a), "different seeds give identical numbers"


def test_rand_range_dtype_shape():
    x = pyzen.rand(100, 100)
    assert x.shape == (100, 100) and x.dtype == pyzen.float32
    a = to_np(x)
    assert a.min() >= 0.0 and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.02
    assert pyzen.rand((3, 2)).shape == (3, 2)
    assert pyzen.rand(3, dtype=pyzen.float64).dtype == pyzen.float64
    assert not pyzen.rand(2).requires_grad
    assert pyzen.rand(2, requires_grad=True).requires_grad


def test_randn_statistics():
    a = to_np(pyzen.randn(20000, dtype=pyzen.float64))
    assert abs(a.mean()) < 0.05
    assert abs(a.std() - 1.0) < 0.05
    assert (a < 0).mean() == pytest.approx(0.5, abs=0.03)
    assert pyzen.randn(2, 3).dtype == pyzen.float32 and pyzen.randn((2, 3)).shape == (2, 3)


def test_randint_range_and_dtype():
    x = pyzen.randint(-3, 2, (2000,))
    assert x.dtype == pyzen.int64 and x.shape == (2000,)
    a = to_np(x)
    assert set(np.unique(a).tolist()) == {-3, -2, -1, 0, 1}
    assert pyzen.randint(0, 4, (2, 3)).shape == (2, 3)


def test_randperm_is_permutation():
    for n in (0, 1, 7, 100):
        p = pyzen.randperm(n)
        assert p.dtype == pyzen.int64 and p.shape == (n,)
        np.testing.assert_array_equal(np.sort(to_np(p)), np.arange(n))
    assert not np.array_equal(to_np(pyzen.randperm(100)), np.arange(100))


def test_like_generators_keep_shape_and_dtype():
    x = pyzen.zeros(2, 3, dtype=pyzen.float64)
    for y in (pyzen.rand_like(x), pyzen.randn_like(x)):
        assert y.shape == (2, 3) and y.dtype == pyzen.float64
    r = to_np(pyzen.rand_like(x))
    assert r.min() >= 0 and r.max() < 1


def test_seed_does_not_touch_numpy_global_rng():
    np.random.seed(7)
    want = np.random.rand(3)
    np.random.seed(7)
    pyzen.manual_seed(99)
    pyzen.rand(10)
    np.testing.assert_array_equal(np.random.rand(3), want)
