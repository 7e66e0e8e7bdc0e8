"""nn.init: in-place initialisers with PyTorch's formulas (bounds, stds, fans, gains),
checked statistically on large tensors against values computed here in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pyzen
import pyzen.nn as nn
from pyzen.nn import init
from conftest import to_np


def vals(t) -> np.ndarray:
    return to_np(t).astype(np.float64).ravel()


def assert_std(t, expected, rel=0.03):
    got = vals(t).std()
    assert abs(got - expected) <= rel * expected, f"std {got} vs expected {expected}"


# ------------------------------------------------------------------ basic fills
def test_uniform_range_and_moments():
    t = pyzen.empty(200, 500)
    out = init.uniform_(t, -2.0, 3.0)
    assert out is t
    v = vals(t)
    assert v.min() >= -2.0 and v.max() < 3.0
    assert v.min() < -1.99 and v.max() > 2.99
    assert abs(v.mean() - 0.5) < 0.02
    assert abs(v.std() - 5.0 / math.sqrt(12)) < 0.01


def test_uniform_default_is_unit_interval():
    v = vals(init.uniform_(pyzen.empty(10_000)))
    assert v.min() >= 0.0 and v.max() < 1.0 and abs(v.mean() - 0.5) < 0.02


def test_normal_moments():
    t = pyzen.empty(300, 400)
    assert init.normal_(t, mean=1.5, std=0.25) is t
    v = vals(t)
    assert abs(v.mean() - 1.5) < 0.002
    assert abs(v.std() - 0.25) < 0.003
    w = vals(init.normal_(pyzen.empty(100_000)))
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1.0) < 0.02


def test_constant_zeros_ones():
    t = pyzen.empty(3, 4)
    assert init.constant_(t, 0.75) is t
    np.testing.assert_array_equal(to_np(t), np.full((3, 4), 0.75))
    np.testing.assert_array_equal(to_np(init.zeros_(t)), np.zeros((3, 4)))
    np.testing.assert_array_equal(to_np(init.ones_(t)), np.ones((3, 4)))


def test_initialisers_keep_dtype():
    t = pyzen.empty(50, 60, dtype=pyzen.float64)
    for fn in (init.uniform_, init.normal_, init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_, init.zeros_):
        assert fn(t).dtype == pyzen.float64


def test_initialisers_work_in_place_on_parameters_without_recording_autograd():
    p = nn.Parameter(pyzen.empty(20, 30))
    for fn in (init.uniform_, init.normal_, init.xavier_uniform_, init.kaiming_normal_, init.ones_):
        out = fn(p)
        assert out is p and p.is_leaf and p.grad_fn is None and p.requires_grad
    lin = nn.Linear(30, 2)
    init.constant_(lin.weight, 0.1)
    np.testing.assert_allclose(to_np(lin.weight), np.full((2, 30), 0.1), rtol=1e-6)
    (lin(pyzen.ones(1, 30))).sum().backward()
    np.testing.assert_allclose(to_np(lin.weight.grad), np.ones((2, 30)), rtol=1e-6)


# ------------------------------------------------------------------ fans
@pytest.mark.parametrize("shape,fan_in,fan_out", [((30, 20), 20, 30), ((8, 4, 3, 3), 36, 72), ((6, 5, 7), 35, 42)])
def test_calculate_fan_in_and_fan_out(shape, fan_in, fan_out):
    assert init._calculate_fan_in_and_fan_out(pyzen.empty(*shape)) == (fan_in, fan_out)


def test_fan_needs_two_dims():
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.raises(ValueError):
            fn(pyzen.empty(10))


# ------------------------------------------------------------------ xavier
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier_uniform_bound(gain):
    fan_out, fan_in = 300, 500
    t = pyzen.empty(fan_out, fan_in)
    assert init.xavier_uniform_(t, gain=gain) is t
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    v = vals(t)
    assert np.abs(v).max() <= bound * (1 + 1e-6)
    assert np.abs(v).max() > 0.995 * bound
    assert abs(v.mean()) < 0.01 * bound
    assert_std(t, bound / math.sqrt(3), rel=0.01)


def test_xavier_uniform_conv_shape_uses_receptive_field():
    t = pyzen.empty(64, 32, 3, 3)
    init.xavier_uniform_(t)
    bound = math.sqrt(6.0 / (32 * 9 + 64 * 9))
    v = vals(t)
    assert np.abs(v).max() <= bound * (1 + 1e-6) and np.abs(v).max() > 0.99 * bound


@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_xavier_normal_std(gain):
    fan_out, fan_in = 400, 250
    t = pyzen.empty(fan_out, fan_in)
    init.xavier_normal_(t, gain=gain)
    assert abs(vals(t).mean()) < 0.01 * gain
    assert_std(t, gain * math.sqrt(2.0 / (fan_in + fan_out)), rel=0.01)


# ------------------------------------------------------------------ kaiming
KAIMING = [
    # (mode, nonlinearity, a)
    ("fan_in", "relu", 0.0),
    ("fan_out", "relu", 0.0),
    ("fan_in", "leaky_relu", 0.0),
    ("fan_in", "leaky_relu", 0.2),
    ("fan_out", "leaky_relu", math.sqrt(5)),
    ("fan_in", "linear", 0.0),
    ("fan_in", "tanh", 0.0),
]


def _kaiming_expected_std(fan, nonlinearity, a):
    gain = {
        "relu": math.sqrt(2.0),
        "leaky_relu": math.sqrt(2.0 / (1 + a * a)),
        "linear": 1.0,
        "tanh": 5.0 / 3,
    }[nonlinearity]
    return gain / math.sqrt(fan)


@pytest.mark.parametrize("mode,nonlinearity,a", KAIMING)
def test_kaiming_normal_std(mode, nonlinearity, a):
    fan_out, fan_in = 200, 600
    t = pyzen.empty(fan_out, fan_in)
    assert init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nonlinearity) is t
    std = _kaiming_expected_std(fan_in if mode == "fan_in" else fan_out, nonlinearity, a)
    assert abs(vals(t).mean()) < 0.02 * std
    assert_std(t, std)


@pytest.mark.parametrize("mode,nonlinearity,a", KAIMING)
def test_kaiming_uniform_bound_and_std(mode, nonlinearity, a):
    fan_out, fan_in = 200, 600
    t = pyzen.empty(fan_out, fan_in)
    init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nonlinearity)
    std = _kaiming_expected_std(fan_in if mode == "fan_in" else fan_out, nonlinearity, a)
    bound = math.sqrt(3.0) * std
    v = vals(t)
    assert np.abs(v).max() <= bound * (1 + 1e-6) and np.abs(v).max() > 0.99 * bound
    assert_std(t, std)


def test_kaiming_defaults_are_leaky_relu_a0_fan_in():
    t = pyzen.empty(100, 900)
    init.kaiming_uniform_(t)  # gain sqrt(2) (leaky_relu with a=0), fan_in 900
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 900)
    v = vals(t)
    assert np.abs(v).max() <= bound * (1 + 1e-6) and np.abs(v).max() > 0.99 * bound


def test_kaiming_conv_shape():
    t = pyzen.empty(32, 16, 5, 5)
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert_std(t, math.sqrt(2.0) / math.sqrt(32 * 25))


def test_kaiming_bad_mode_raises():
    with pytest.raises(ValueError):
        init.kaiming_uniform_(pyzen.empty(3, 3), mode="fan_avg")


def test_linear_init_equals_kaiming_uniform_sqrt5():
    # PyTorch's Linear: kaiming_uniform_(a=sqrt(5)) -> bound = sqrt(6 / (1 + 5)) / sqrt(fan_in) = 1 / sqrt(fan_in)
    gain = math.sqrt(2.0 / (1 + 5))
    assert math.isclose(gain * math.sqrt(3.0), 1.0)
    t = pyzen.empty(300, 400)
    init.kaiming_uniform_(t, a=math.sqrt(5))
    v = vals(t)
    assert np.abs(v).max() <= 1 / math.sqrt(400) * (1 + 1e-6)
    assert_std(t, 1 / math.sqrt(3 * 400), rel=0.01)


# ------------------------------------------------------------------ gains
@pytest.mark.parametrize(
    "nonlinearity,param,expected",
    [
        ("linear", None, 1.0),
        ("identity", None, 1.0),
        ("conv1d", None, 1.0),
        ("conv2d", None, 1.0),
        ("conv3d", None, 1.0),
        ("conv_transpose1d", None, 1.0),
        ("conv_transpose2d", None, 1.0),
        ("conv_transpose3d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5.0 / 3),
        ("relu", None, math.sqrt(2.0)),
        ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2.0 / (1 + 0.04))),
        ("leaky_relu", 0.0, math.sqrt(2.0)),
        ("selu", None, 0.75),
    ],
)
def test_calculate_gain(nonlinearity, param, expected):
    got = init.calculate_gain(nonlinearity) if param is None else init.calculate_gain(nonlinearity, param)
    assert math.isclose(got, expected, rel_tol=1e-12)


def test_calculate_gain_unknown_raises():
    with pytest.raises(ValueError, match="swish"):
        init.calculate_gain("swish")


# ------------------------------------------------------------------ reproducibility
@pytest.mark.parametrize(
    "fn",
    [
        lambda t: init.uniform_(t, -1, 1),
        lambda t: init.normal_(t),
        init.xavier_uniform_,
        init.xavier_normal_,
        init.kaiming_uniform_,
        init.kaiming_normal_,
    ],
    ids=["uniform", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"],
)
def test_reproducible_with_manual_seed(fn):
    pyzen.manual_seed(42)
    a = to_np(fn(pyzen.empty(8, 16))).copy()
    b = to_np(fn(pyzen.empty(8, 16))).copy()
    pyzen.manual_seed(42)
    c = to_np(fn(pyzen.empty(8, 16))).copy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


def test_module_init_reproducible_with_manual_seed():
    def build():
        return nn.Sequential(nn.Linear(4, 8), nn.Embedding(10, 4), nn.MultiheadAttention(8, 2), nn.LayerNorm(8))

    pyzen.manual_seed(5)
    a = build().state_dict()
    pyzen.manual_seed(5)
    b = build().state_dict()
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(to_np(a[k]), to_np(b[k]), err_msg=k)
