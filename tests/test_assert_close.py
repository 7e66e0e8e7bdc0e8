"""pyzen.testing.assert_close: accepts tensors, arrays and scalars; fails when not close."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
from pyzen.testing import assert_close


def test_passes_for_close_values():
    assert_close(pyzen.tensor([1.0, 2.0]), pyzen.tensor([1.0, 2.0 + 1e-7]))
    assert_close(pyzen.tensor([1.0, 2.0]), np.array([1.0, 2.0], dtype=np.float32))
    assert_close(pyzen.tensor(3.0), 3.0)
    assert_close(pyzen.tensor([1.0, 2.0], dtype=pyzen.float64), np.array([1.0, 2.0]))
    assert_close(1.0, 1.0)
    assert_close(pyzen.tensor([1.0]), pyzen.tensor([1.1]), rtol=0.2, atol=0.0)


@pytest.mark.parametrize("actual,expected,kw", [
    (pyzen.tensor([1.0, 2.0]), pyzen.tensor([1.0, 2.1]), {}),
    (pyzen.tensor([1.0, 2.0]), np.array([1.0, 3.0], dtype=np.float32), {}),
    (pyzen.tensor(3.0), 3.5, {}),
    (pyzen.tensor([1.0, 2.0]), pyzen.tensor([1.0, 2.0, 3.0]), {}),
    (pyzen.tensor([float("nan")]), pyzen.tensor([1.0]), {}),
    (pyzen.tensor([1.0], dtype=pyzen.float64), np.array([1.0 + 1e-5]), dict(rtol=1e-7, atol=1e-7)),
    (pyzen.tensor([1.0]), pyzen.tensor([1.1]), dict(rtol=0.01, atol=0.0)),
])
def test_raises_assertion_error_when_not_close(actual, expected, kw):
    with pytest.raises(AssertionError):
        assert_close(actual, expected, **kw)


def test_is_exposed_as_pyzen_testing():
    assert pyzen.testing.assert_close is assert_close
