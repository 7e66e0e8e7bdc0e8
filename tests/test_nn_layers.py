"""nn layers against NumPy float64 references: Linear, Embedding, LayerNorm, Dropout,
activations, containers, MultiheadAttention and TransformerEncoderLayer.

References are written from PyTorch's documented formulas and use the module's own
parameters (read out as NumPy arrays); expected values never come from pyzen ops.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyzen
import pyzen.nn as nn
from conftest import assert_np_close, to_np

F64 = pyzen.float64
R64, A64 = 1e-10, 1e-12  # float64 vs float64 reference
R32, A32 = 1e-5, 1e-6  # float32 vs float64 reference

_erf = np.vectorize(math.erf)


def t64(a, requires_grad=False):
    return pyzen.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def p_np(p) -> np.ndarray:
    return to_np(p).astype(np.float64)


def randomize(module: nn.Module, rng: np.random.Generator, scale: float = 0.5) -> dict:
    """Fill every parameter with random values (through load_state_dict); returns them as float64 arrays."""
    sd = module.state_dict()
    new = {k: rng.standard_normal(tuple(v.shape)) * scale for k, v in sd.items()}
    module.load_state_dict({k: pyzen.tensor(v) for k, v in new.items()})
    return new


# ------------------------------------------------------------------ NumPy references
def np_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def np_layer_norm(x, n_dims, weight=None, bias=None, eps=1e-5):
    axes = tuple(range(x.ndim - n_dims, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)  # biased variance, like PyTorch
    y = (x - mu) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def np_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def np_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def np_mha(q, k, v, p, num_heads, additive_mask=None):
    """Batch-first multi-head attention with PyTorch's parameter layout.

    q (B, Tq, E), k/v (B, Tk, E); p: dict with in_proj_weight (3E, E), in_proj_bias (3E,),
    out_proj.weight (E, E), out_proj.bias (E,); additive_mask broadcastable to (B, H, Tq, Tk).
    Returns (out (B, Tq, E), probs (B, H, Tq, Tk))."""
    B, Tq, E = q.shape
    Tk = k.shape[1]
    d = E // num_heads
    W = p["in_proj_weight"]
    bias = p.get("in_proj_bias", np.zeros(3 * E))
    Q = q @ W[:E].T + bias[:E]
    K = k @ W[E : 2 * E].T + bias[E : 2 * E]
    V = v @ W[2 * E :].T + bias[2 * E :]
    Q = Q.reshape(B, Tq, num_heads, d).transpose(0, 2, 1, 3)
    K = K.reshape(B, Tk, num_heads, d).transpose(0, 2, 1, 3)
    V = V.reshape(B, Tk, num_heads, d).transpose(0, 2, 1, 3)
    S = Q @ K.transpose(0, 1, 3, 2) / math.sqrt(d)
    if additive_mask is not None:
        S = S + additive_mask
    P = np_softmax(S, -1)
    O = (P @ V).transpose(0, 2, 1, 3).reshape(B, Tq, E)
    out = O @ p["out_proj.weight"].T + p.get("out_proj.bias", np.zeros(E))
    return out, P


def bool_to_additive(masked_out):
    """PyTorch MHA bool mask (True = do not attend) -> additive float mask."""
    return np.where(masked_out, -np.inf, 0.0)


# ------------------------------------------------------------------ Linear
def test_linear_weight_layout_and_forward_float64():
    rng = np.random.default_rng(0)
    lin = nn.Linear(5, 3, dtype=F64)
    assert tuple(lin.weight.shape) == (3, 5) and tuple(lin.bias.shape) == (3,)
    assert lin.weight.dtype == F64
    x = rng.standard_normal((4, 5))
    out = lin(t64(x))
    assert tuple(out.shape) == (4, 3)
    assert_np_close(to_np(out), x @ p_np(lin.weight).T + p_np(lin.bias), R64, A64)


def test_linear_float32_default_dtype():
    rng = np.random.default_rng(1)
    lin = nn.Linear(6, 2)
    assert lin.weight.dtype == pyzen.float32
    x = rng.standard_normal((3, 6)).astype(np.float32)
    out = lin(pyzen.tensor(x))
    assert out.dtype == pyzen.float32
    assert_np_close(to_np(out), x.astype(np.float64) @ p_np(lin.weight).T + p_np(lin.bias), R32, A32)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 5), (2, 1, 3, 5)])
def test_linear_leading_dims(shape):
    rng = np.random.default_rng(2)
    lin = nn.Linear(5, 4, dtype=F64)
    x = rng.standard_normal(shape)
    out = lin(t64(x))
    assert tuple(out.shape) == shape[:-1] + (4,)
    assert_np_close(to_np(out), x @ p_np(lin.weight).T + p_np(lin.bias), R64, A64)


def test_linear_without_bias():
    rng = np.random.default_rng(3)
    lin = nn.Linear(4, 3, bias=False, dtype=F64)
    assert lin.bias is None and len(list(lin.parameters())) == 1
    x = rng.standard_normal((2, 4))
    assert_np_close(to_np(lin(t64(x))), x @ p_np(lin.weight).T, R64, A64)


def test_linear_gradients():
    rng = np.random.default_rng(4)
    lin = nn.Linear(4, 3, dtype=F64)
    x_np = rng.standard_normal((5, 4))
    g = rng.standard_normal((5, 3))
    x = t64(x_np, requires_grad=True)
    lin(x).backward(t64(g))
    w = p_np(lin.weight)
    assert_np_close(to_np(lin.weight.grad), g.T @ x_np, R64, A64)
    assert_np_close(to_np(lin.bias.grad), g.sum(0), R64, A64)
    assert_np_close(to_np(x.grad), g @ w, R64, A64)


def test_linear_default_init_bounds_and_std():
    in_f, out_f = 400, 300
    lin = nn.Linear(in_f, out_f)
    w, b = p_np(lin.weight), p_np(lin.bias)
    bound = 1.0 / math.sqrt(in_f)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-bound, bound) has std bound / sqrt(3) = 1 / sqrt(3 * in_features)
    expected_std = 1.0 / math.sqrt(3 * in_f)
    assert abs(w.std() - expected_std) < 0.02 * expected_std
    assert abs(w.mean()) < 0.01 * bound
    assert np.abs(w).max() > 0.99 * bound  # the whole interval is used
    assert abs(b.std() - expected_std) < 0.2 * expected_std  # only 300 samples


def test_linear_init_is_reproducible_with_manual_seed():
    pyzen.manual_seed(7)
    a = nn.Linear(8, 8)
    pyzen.manual_seed(7)
    b = nn.Linear(8, 8)
    c = nn.Linear(8, 8)
    np.testing.assert_array_equal(to_np(a.weight), to_np(b.weight))
    np.testing.assert_array_equal(to_np(a.bias), to_np(b.bias))
    assert not np.array_equal(to_np(b.weight), to_np(c.weight))


def test_layers_follow_the_default_dtype():
    pyzen.set_default_dtype(F64)
    try:
        layers = [nn.Linear(2, 2), nn.Embedding(3, 2), nn.LayerNorm(2), nn.MultiheadAttention(2, 1), nn.TransformerEncoderLayer(2, 1, 4)]
    finally:
        pyzen.set_default_dtype(pyzen.float32)
    for layer in layers:
        for name, prm in layer.named_parameters():
            assert prm.dtype == F64, f"{type(layer).__name__}.{name}"
    assert nn.Linear(2, 2).weight.dtype == pyzen.float32


def test_identity():
    x = pyzen.randn(2, 3)
    np.testing.assert_array_equal(to_np(nn.Identity(5, foo=1)(x)), to_np(x))


# ------------------------------------------------------------------ Embedding
def test_embedding_init_is_standard_normal():
    emb = nn.Embedding(1000, 64)
    w = p_np(emb.weight)
    assert w.shape == (1000, 64) and emb.weight.dtype == pyzen.float32
    assert abs(w.mean()) < 0.02
    assert abs(w.std() - 1.0) < 0.02


def test_embedding_forward_picks_rows():
    emb = nn.Embedding(10, 4, dtype=F64)
    idx = np.array([[1, 9, 1], [0, 3, 2]])
    out = emb(pyzen.tensor(idx))
    assert tuple(out.shape) == (2, 3, 4)
    assert_np_close(to_np(out), p_np(emb.weight)[idx], 0, 0)


def test_embedding_backward_scatter_adds_repeated_indices():
    rng = np.random.default_rng(5)
    emb = nn.Embedding(6, 3, dtype=F64)
    idx = np.array([[1, 4, 1], [1, 0, 4]])
    g = rng.standard_normal((2, 3, 3))
    emb(pyzen.tensor(idx)).backward(t64(g))
    expected = np.zeros((6, 3))
    np.add.at(expected, idx.reshape(-1), g.reshape(-1, 3))
    assert_np_close(to_np(emb.weight.grad), expected, R64, A64)


def test_embedding_padding_idx_row_is_zero_and_gets_no_gradient():
    rng = np.random.default_rng(6)
    emb = nn.Embedding(5, 3, padding_idx=2, dtype=F64)
    w = p_np(emb.weight)
    np.testing.assert_array_equal(w[2], np.zeros(3))
    assert np.all(w[[0, 1, 3, 4]] != 0)
    idx = np.array([2, 0, 2, 4])
    g = rng.standard_normal((4, 3))
    out = emb(pyzen.tensor(idx))
    np.testing.assert_array_equal(to_np(out)[[0, 2]], np.zeros((2, 3)))
    out.backward(t64(g))
    expected = np.zeros((5, 3))
    np.add.at(expected, idx, g)
    expected[2] = 0.0
    assert_np_close(to_np(emb.weight.grad), expected, R64, A64)


def test_embedding_negative_padding_idx():
    emb = nn.Embedding(5, 2, padding_idx=-1)
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(to_np(emb.weight)[4], np.zeros(2))
    with pytest.raises(ValueError):
        nn.Embedding(5, 2, padding_idx=5)


def test_embedding_out_of_range_index_raises():
    emb = nn.Embedding(4, 2)
    with pytest.raises(IndexError):
        emb(pyzen.tensor(np.array([0, 4])))


# ------------------------------------------------------------------ LayerNorm
def test_layer_norm_default_params_and_values():
    rng = np.random.default_rng(7)
    ln = nn.LayerNorm(6, dtype=F64)
    np.testing.assert_array_equal(p_np(ln.weight), np.ones(6))
    np.testing.assert_array_equal(p_np(ln.bias), np.zeros(6))
    x = rng.standard_normal((3, 4, 6)) * 3 + 1
    assert_np_close(to_np(ln(t64(x))), np_layer_norm(x, 1), 1e-9, 1e-10)


def test_layer_norm_affine_values_and_eps():
    rng = np.random.default_rng(8)
    ln = nn.LayerNorm(5, eps=0.1, dtype=F64)
    p = randomize(ln, rng)
    x = rng.standard_normal((4, 5)) * 0.3  # small variance so eps matters
    expected = np_layer_norm(x, 1, p["weight"], p["bias"], eps=0.1)
    assert_np_close(to_np(ln(t64(x))), expected, 1e-9, 1e-10)
    assert not np.allclose(expected, np_layer_norm(x, 1, p["weight"], p["bias"], eps=1e-5))


def test_layer_norm_float32():
    rng = np.random.default_rng(9)
    ln = nn.LayerNorm(32)
    p = randomize(ln, rng)
    x = rng.standard_normal((8, 32)).astype(np.float32)
    out = ln(pyzen.tensor(x))
    assert out.dtype == pyzen.float32
    assert_np_close(to_np(out), np_layer_norm(x.astype(np.float64), 1, p["weight"], p["bias"]), 1e-4, 1e-5)


def test_layer_norm_without_elementwise_affine():
    rng = np.random.default_rng(10)
    ln = nn.LayerNorm(4, elementwise_affine=False, dtype=F64)
    assert list(ln.parameters()) == [] and list(ln.state_dict()) == []
    assert ln.weight is None and ln.bias is None
    x = rng.standard_normal((3, 4))
    assert_np_close(to_np(ln(t64(x))), np_layer_norm(x, 1), 1e-9, 1e-10)


def test_layer_norm_without_bias():
    rng = np.random.default_rng(11)
    ln = nn.LayerNorm(4, bias=False, dtype=F64)
    assert ln.bias is None and [n for n, _ in ln.named_parameters()] == ["weight"]
    p = randomize(ln, rng)
    x = rng.standard_normal((3, 4))
    assert_np_close(to_np(ln(t64(x))), np_layer_norm(x, 1, p["weight"]), 1e-9, 1e-10)


def test_layer_norm_two_dim_normalized_shape():
    rng = np.random.default_rng(12)
    ln = nn.LayerNorm((3, 4), dtype=F64)
    assert ln.normalized_shape == (3, 4) and tuple(ln.weight.shape) == (3, 4)
    p = randomize(ln, rng)
    x = rng.standard_normal((2, 3, 4)) * 2 - 1
    out = ln(t64(x, requires_grad=True))
    assert_np_close(to_np(out), np_layer_norm(x, 2, p["weight"], p["bias"]), 1e-9, 1e-10)
    out.sum().backward()
    assert tuple(ln.weight.grad.shape) == (3, 4)
    # d(sum y)/d(bias) = number of rows; d(sum y)/d(weight) = sum of normalised x
    assert_np_close(to_np(ln.bias.grad), np.full((3, 4), 2.0), R64, A64)
    assert_np_close(to_np(ln.weight.grad), np_layer_norm(x, 2).sum(0), 1e-9, 1e-10)


def test_layer_norm_input_gradient():
    rng = np.random.default_rng(13)
    ln = nn.LayerNorm(5, dtype=F64)
    p = randomize(ln, rng)
    x_np = rng.standard_normal((3, 5))
    g = rng.standard_normal((3, 5))
    x = t64(x_np, requires_grad=True)
    ln(x).backward(t64(g))
    # analytic LayerNorm backward: dx = rstd * (gy - mean(gy) - xhat * mean(gy * xhat)), gy = g * w
    mu = x_np.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(((x_np - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
    xhat = (x_np - mu) * rstd
    gy = g * p["weight"]
    dx = rstd * (gy - gy.mean(-1, keepdims=True) - xhat * (gy * xhat).mean(-1, keepdims=True))
    assert_np_close(to_np(x.grad), dx, 1e-9, 1e-10)
    assert_np_close(to_np(ln.weight.grad), (g * xhat).sum(0), 1e-9, 1e-10)
    assert_np_close(to_np(ln.bias.grad), g.sum(0), R64, A64)


def test_layer_repr_strings():
    assert repr(nn.LayerNorm(8)) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True)"
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    assert repr(nn.Embedding(10, 3)) == "Embedding(10, 3)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.GELU()) == "GELU(approximate='none')"


# ------------------------------------------------------------------ Dropout
def test_dropout_eval_is_identity():
    d = nn.Dropout(0.5).eval()
    x = pyzen.randn(100, 10)
    np.testing.assert_array_equal(to_np(d(x)), to_np(x))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.7])
def test_dropout_train_statistics(p):
    d = nn.Dropout(p)
    assert d.training
    n = 200_000
    out = to_np(d(pyzen.ones(n))).astype(np.float64)
    zero = out == 0
    frac = zero.mean()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(frac - p) < 6 * sigma
    assert_np_close(out[~zero], np.full((~zero).sum(), 1.0 / (1.0 - p)), 1e-6, 1e-6)


def test_dropout_gradient_uses_the_same_mask():
    d = nn.Dropout(0.4)
    x = pyzen.ones(1000, dtype=F64, requires_grad=True)
    out = d(x)
    out.sum().backward()
    assert_np_close(to_np(x.grad), to_np(out), R64, A64)  # out = mask / (1-p), d(sum out)/dx = mask / (1-p)


def test_dropout_edge_probabilities():
    x = pyzen.randn(50)
    np.testing.assert_array_equal(to_np(nn.Dropout(0.0)(x)), to_np(x))
    np.testing.assert_array_equal(to_np(nn.Dropout(1.0)(x)), np.zeros(50))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError):
            nn.Dropout(bad)


def test_dropout_masks_differ_between_calls_and_follow_the_seed():
    d = nn.Dropout(0.5)
    pyzen.manual_seed(3)
    a = to_np(d(pyzen.ones(64)))
    b = to_np(d(pyzen.ones(64)))
    pyzen.manual_seed(3)
    a2 = to_np(d(pyzen.ones(64)))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, a2)


# ------------------------------------------------------------------ activations
ACTIVATIONS = [
    ("relu", lambda: nn.ReLU(), lambda x: np.maximum(x, 0.0)),
    ("tanh", lambda: nn.Tanh(), np.tanh),
    ("sigmoid", lambda: nn.Sigmoid(), lambda x: 1.0 / (1.0 + np.exp(-x))),
    ("silu", lambda: nn.SiLU(), lambda x: x / (1.0 + np.exp(-x))),
    ("gelu", lambda: nn.GELU(), np_gelu),
    ("gelu_tanh", lambda: nn.GELU(approximate="tanh"), np_gelu_tanh),
]


@pytest.mark.parametrize("name,make,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
@pytest.mark.parametrize("dtype", [pyzen.float32, F64], ids=["f32", "f64"])
def test_activation_forward(name, make, ref, dtype):
    rng = np.random.default_rng(14)
    x = rng.uniform(-4, 4, size=(3, 7))
    x[np.abs(x) < 0.05] = 0.5  # away from relu's kink
    out = make()(pyzen.tensor(x, dtype=dtype))
    assert out.dtype == dtype and tuple(out.shape) == (3, 7)
    r, a = (1e-10, 1e-12) if dtype == F64 else (1e-5, 1e-6)
    assert_np_close(to_np(out), ref(x), r, a, name)


def test_gelu_exact_and_tanh_differ():
    x = np.linspace(-3, 3, 13)
    exact = to_np(nn.GELU()(t64(x)))
    approx = to_np(nn.GELU("tanh")(t64(x)))
    assert np.abs(exact - approx).max() > 1e-5
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"


@pytest.mark.parametrize("name,make,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_gradient(name, make, ref):
    rng = np.random.default_rng(15)
    x_np = rng.uniform(-3, 3, size=(4, 5))
    x_np[np.abs(x_np) < 0.1] = 0.7
    x = t64(x_np, requires_grad=True)
    make()(x).sum().backward()
    h = 1e-6
    numeric = (ref(x_np + h) - ref(x_np - h)) / (2 * h)
    assert_np_close(to_np(x.grad), numeric, 1e-6, 1e-8, name)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_module(dim):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((3, 4, 5)) * 3
    out = to_np(nn.Softmax(dim=dim)(t64(x)))
    assert_np_close(out, np_softmax(x, dim), R64, A64)
    assert_np_close(out.sum(axis=dim), np.ones(np.delete(x.shape, dim % 3)), R64, A64)


def test_log_softmax_module():
    rng = np.random.default_rng(17)
    x = rng.standard_normal((3, 4)) * 5
    assert_np_close(to_np(nn.LogSoftmax(dim=1)(t64(x))), np.log(np_softmax(x, 1)), 1e-9, 1e-10)


def test_softmax_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1001.0]])
    out = to_np(nn.Softmax(dim=-1)(pyzen.tensor(x, dtype=pyzen.float32)))
    assert np.isfinite(out).all()
    assert_np_close(out, np_softmax(x, -1), 1e-5, 1e-6)


# ------------------------------------------------------------------ containers
def test_sequential_chains_and_indexes():
    rng = np.random.default_rng(18)
    model = nn.Sequential(nn.Linear(3, 5, dtype=F64), nn.Tanh(), nn.Linear(5, 2, dtype=F64))
    assert len(model) == 3
    assert isinstance(model[1], nn.Tanh) and model[-1] is model[2]
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear"]
    x = rng.standard_normal((4, 3))
    w1, b1, w2, b2 = (p_np(p) for p in model.parameters())
    expected = np.tanh(x @ w1.T + b1) @ w2.T + b2
    assert_np_close(to_np(model(t64(x))), expected, R64, A64)
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    assert_np_close(to_np(head(t64(x))), np.tanh(x @ w1.T + b1), R64, A64)


def test_sequential_index_out_of_range():
    with pytest.raises(IndexError):
        nn.Sequential(nn.ReLU())[1]


def test_sequential_append_and_empty():
    model = nn.Sequential()
    x = pyzen.randn(2, 2)
    np.testing.assert_array_equal(to_np(model(x)), to_np(x))
    model.append(nn.ReLU())
    assert len(model) == 1 and list(model.state_dict()) == []
    model.append(nn.Linear(2, 2))
    assert list(model.state_dict()) == ["1.weight", "1.bias"]


def test_sequential_ordered_dict():
    model = nn.Sequential(OrderedDict([("a", nn.Linear(2, 2)), ("b", nn.ReLU())]))
    assert [n for n, _ in model.named_children()] == ["a", "b"]
    assert model[0] is model.a


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    assert len(layers) == 2
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh(), nn.Linear(2, 1)])
    assert len(layers) == 5
    assert [type(m).__name__ for m in layers] == ["Linear", "Linear", "ReLU", "Tanh", "Linear"]
    assert layers[-1] is layers[4]
    sub = layers[1:3]
    assert isinstance(sub, nn.ModuleList) and len(sub) == 2 and sub[0] is layers[1]
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]


def test_module_list_setitem_replaces_in_place():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)])
    new = nn.Linear(2, 2, bias=False)
    layers[0] = new
    assert layers[0] is new and len(layers) == 3
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Linear"]
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "2.weight", "2.bias"]
    layers[-1] = nn.Tanh()
    assert isinstance(layers[2], nn.Tanh) and layers[0] is new


def test_module_dict():
    d = nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU()})
    assert len(d) == 2 and "enc" in d and "dec" not in d
    assert list(d) == ["enc", "act"] and list(d.keys()) == ["enc", "act"]
    d["dec"] = nn.Linear(3, 2)
    assert [k for k, _ in d.items()] == ["enc", "act", "dec"]
    assert isinstance(d["dec"], nn.Linear)
    assert [n for n, _ in d.named_parameters()] == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    del d["act"]
    assert list(d) == ["enc", "dec"] and len(list(d.values())) == 2


# ------------------------------------------------------------------ MultiheadAttention
def _mha_inputs(rng, B, Tq, Tk, E):
    return rng.standard_normal((B, Tq, E)), rng.standard_normal((B, Tk, E)), rng.standard_normal((B, Tk, E))


@pytest.mark.parametrize("batch_first", [True, False])
def test_mha_matches_reference(batch_first):
    rng = np.random.default_rng(19)
    B, Tq, Tk, E, H = 2, 3, 5, 8, 2
    mha = nn.MultiheadAttention(E, H, batch_first=batch_first, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, B, Tq, Tk, E)
    exp_out, probs = np_mha(q, k, v, p, H)
    if batch_first:
        out, w = mha(t64(q), t64(k), t64(v))
    else:  # sequence-first: (T, B, E) in and out
        out, w = mha(t64(q.transpose(1, 0, 2)), t64(k.transpose(1, 0, 2)), t64(v.transpose(1, 0, 2)))
        exp_out = exp_out.transpose(1, 0, 2)
    assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)
    # need_weights defaults to True: weights averaged over heads, batch first, (B, Tq, Tk)
    assert tuple(w.shape) == (B, Tq, Tk)
    assert_np_close(to_np(w), probs.mean(1), 1e-9, 1e-10)
    assert_np_close(to_np(w).sum(-1), np.ones((B, Tq)), 1e-9, 1e-10)


def test_mha_default_init_and_parameter_shapes():
    E = 16
    mha = nn.MultiheadAttention(E, 4)
    assert tuple(mha.in_proj_weight.shape) == (3 * E, E)
    assert tuple(mha.in_proj_bias.shape) == (3 * E,)
    assert tuple(mha.out_proj.weight.shape) == (E, E)
    np.testing.assert_array_equal(p_np(mha.in_proj_bias), np.zeros(3 * E))
    np.testing.assert_array_equal(p_np(mha.out_proj.bias), np.zeros(E))
    bound = math.sqrt(6.0 / (3 * E + E))  # xavier_uniform_ on (3E, E)
    assert np.abs(p_np(mha.in_proj_weight)).max() <= bound
    assert [n for n, _ in mha.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    with pytest.raises(ValueError):
        nn.MultiheadAttention(10, 3)


def test_mha_unaveraged_weights():
    rng = np.random.default_rng(20)
    B, T, E, H = 2, 4, 6, 3
    mha = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, B, T, T, E)
    _, probs = np_mha(q, k, v, p, H)
    _, w = mha(t64(q), t64(k), t64(v), average_attn_weights=False)
    assert tuple(w.shape) == (B, H, T, T)
    assert_np_close(to_np(w), probs, 1e-9, 1e-10)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_bool_attn_mask_true_means_masked(need_weights):
    rng = np.random.default_rng(21)
    B, Tq, Tk, E, H = 2, 3, 4, 8, 2
    mha = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, B, Tq, Tk, E)
    masked = rng.random((Tq, Tk)) < 0.4
    masked[:, 0] = False  # every query keeps at least one key
    exp_out, probs = np_mha(q, k, v, p, H, bool_to_additive(masked))
    out, w = mha(t64(q), t64(k), t64(v), attn_mask=pyzen.tensor(masked), need_weights=need_weights)
    assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)
    if need_weights:
        w = to_np(w)
        assert_np_close(w, probs.mean(1), 1e-9, 1e-10)
        assert np.all(w[:, masked] == 0.0)
    else:
        assert w is None


def test_mha_float_attn_mask_is_added():
    rng = np.random.default_rng(22)
    B, T, E, H = 2, 4, 8, 4
    mha = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, B, T, T, E)
    add = rng.standard_normal((T, T))
    exp_out, probs = np_mha(q, k, v, p, H, add)
    out, w = mha(t64(q), t64(k), t64(v), attn_mask=t64(add))
    assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)
    assert_np_close(to_np(w), probs.mean(1), 1e-9, 1e-10)
    out, _ = mha(t64(q), t64(k), t64(v), attn_mask=t64(add), need_weights=False)  # the fused path
    assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_key_padding_mask(need_weights):
    rng = np.random.default_rng(23)
    B, Tq, Tk, E, H = 3, 2, 5, 8, 2
    mha = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, B, Tq, Tk, E)
    pad = np.zeros((B, Tk), dtype=bool)
    pad[0, 3:] = True
    pad[2, 1:] = True  # batch 1 has no padding
    exp_out, probs = np_mha(q, k, v, p, H, bool_to_additive(pad)[:, None, None, :])
    out, w = mha(t64(q), t64(k), t64(v), key_padding_mask=pyzen.tensor(pad), need_weights=need_weights)
    assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)
    if need_weights:
        assert_np_close(to_np(w), probs.mean(1), 1e-9, 1e-10)
        assert np.all(to_np(w)[0][:, 3:] == 0.0) and np.all(to_np(w)[2][:, 1:] == 0.0)


def test_mha_key_padding_mask_combined_with_attn_mask():
    rng = np.random.default_rng(24)
    B, T, E, H = 2, 4, 8, 2
    mha = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, B, T, T, E)
    causal = np.triu(np.ones((T, T), dtype=bool), 1)
    pad = np.zeros((B, T), dtype=bool)
    pad[1, 2] = True
    mask = bool_to_additive(causal)[None, None] + bool_to_additive(pad)[:, None, None, :]
    exp_out, _ = np_mha(q, k, v, p, H, mask)
    for need_weights in (True, False):
        out, _ = mha(t64(q), t64(k), t64(v), attn_mask=pyzen.tensor(causal), key_padding_mask=pyzen.tensor(pad), need_weights=need_weights)
        assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_is_causal_with_causal_mask(need_weights):
    # PyTorch's is_causal is a hint that attn_mask is the causal mask
    rng = np.random.default_rng(25)
    B, T, E, H = 2, 5, 8, 2
    mha = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    x = rng.standard_normal((B, T, E))
    causal = np.triu(np.ones((T, T), dtype=bool), 1)
    exp_out, probs = np_mha(x, x, x, p, H, bool_to_additive(causal))
    out, w = mha(t64(x), t64(x), t64(x), attn_mask=pyzen.tensor(causal), is_causal=True, need_weights=need_weights)
    assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)
    if need_weights:
        assert_np_close(to_np(w), probs.mean(1), 1e-9, 1e-10)
        assert np.all(np.triu(to_np(w)[0], 1) == 0.0)


def test_mha_is_causal_without_mask_is_causal():
    """pyzen extension: is_causal=True alone applies the causal mask (PyTorch requires attn_mask too)."""
    rng = np.random.default_rng(26)
    B, T, E, H = 2, 4, 8, 2
    mha = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    x = rng.standard_normal((B, T, E))
    exp_out, _ = np_mha(x, x, x, p, H, bool_to_additive(np.triu(np.ones((T, T), dtype=bool), 1)))
    out, _ = mha(t64(x), t64(x), t64(x), is_causal=True, need_weights=False)
    assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)


def test_mha_unbatched_input():
    # PyTorch accepts unbatched (L, E) query/key/value and returns (L, E) and weights (L, S)
    rng = np.random.default_rng(37)
    mha = nn.MultiheadAttention(4, 2, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    exp_out, probs = np_mha(q[None], k[None], v[None], p, 2)
    out, w = mha(t64(q), t64(k), t64(v))
    assert_np_close(to_np(out), exp_out[0], 1e-9, 1e-10)
    assert_np_close(to_np(w), probs.mean(1)[0], 1e-9, 1e-10)


def test_mha_without_bias():
    rng = np.random.default_rng(27)
    B, T, E, H = 2, 3, 4, 2
    mha = nn.MultiheadAttention(E, H, bias=False, batch_first=True, dtype=F64)
    assert mha.in_proj_bias is None and mha.out_proj.bias is None
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, B, T, T, E)
    exp_out, _ = np_mha(q, k, v, p, H)
    assert_np_close(to_np(mha(t64(q), t64(k), t64(v))[0]), exp_out, 1e-9, 1e-10)


def test_mha_gradients_reach_every_parameter_and_input():
    rng = np.random.default_rng(28)
    mha = nn.MultiheadAttention(8, 2, batch_first=True, dtype=F64)
    randomize(mha, rng)
    q = t64(rng.standard_normal((2, 3, 8)), requires_grad=True)
    kv = t64(rng.standard_normal((2, 4, 8)), requires_grad=True)
    out, _ = mha(q, kv, kv, need_weights=False)
    (out * out).sum().backward()
    for name, prm in mha.named_parameters():
        assert prm.grad is not None and np.abs(to_np(prm.grad)).sum() > 0, name
    assert q.grad is not None and kv.grad is not None


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("tk", [2, 3], ids=["self_len", "cross_len"])
def test_mha_gradcheck_small(need_weights, tk):
    rng = np.random.default_rng(29)
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=F64)
    randomize(mha, rng)
    q = t64(rng.standard_normal((1, 2, 4)), requires_grad=True)
    kv = t64(rng.standard_normal((1, tk, 4)), requires_grad=True)
    assert pyzen.autograd.gradcheck(lambda a, b: mha(a, b, b, need_weights=need_weights)[0], (q, kv))


def test_mha_train_dropout_returned_weights_are_the_ones_applied():
    """PyTorch applies attention dropout to the weights it returns (need_weights=True, training)."""
    rng = np.random.default_rng(39)
    B, T, E, H = 2, 6, 4, 2
    mha = nn.MultiheadAttention(E, H, dropout=0.5, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    x = rng.standard_normal((B, T, E))
    out, w = mha(t64(x), t64(x), t64(x), average_attn_weights=False)
    w = to_np(w)
    assert (w == 0).any()  # dropped entries are 0 (kept ones scaled by 2: rows no longer sum to 1)
    assert not np.allclose(w.sum(-1), 1.0)
    V = (x @ p["in_proj_weight"][2 * E :].T + p["in_proj_bias"][2 * E :]).reshape(B, T, H, E // H).transpose(0, 2, 1, 3)
    O = (w @ V).transpose(0, 2, 1, 3).reshape(B, T, E)
    assert_np_close(to_np(out), O @ p["out_proj.weight"].T + p["out_proj.bias"], 1e-9, 1e-10)


def test_mha_eval_dropout_is_inactive():
    rng = np.random.default_rng(30)
    mha = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True, dtype=F64).eval()
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, 2, 3, 3, 8)
    exp_out, _ = np_mha(q, k, v, p, 2)
    for need_weights in (True, False):
        assert_np_close(to_np(mha(t64(q), t64(k), t64(v), need_weights=need_weights)[0]), exp_out, 1e-9, 1e-10)


# ------------------------------------------------------------------ TransformerEncoderLayer
def np_encoder_layer(x, p, H, norm_first, act=lambda h: np.maximum(h, 0.0), mask=None, eps=1e-5):
    """Batch-first reference of PyTorch's TransformerEncoderLayer (dropout off)."""
    attn = {k[len("self_attn.") :]: v for k, v in p.items() if k.startswith("self_attn.")}

    def sa(h):
        return np_mha(h, h, h, attn, H, mask)[0]

    def ff(h):
        return act(h @ p["linear1.weight"].T + p["linear1.bias"]) @ p["linear2.weight"].T + p["linear2.bias"]

    def ln1(h):
        return np_layer_norm(h, 1, p["norm1.weight"], p["norm1.bias"], eps)

    def ln2(h):
        return np_layer_norm(h, 1, p["norm2.weight"], p["norm2.bias"], eps)

    if norm_first:
        x = x + sa(ln1(x))
        return x + ff(ln2(x))
    x = ln1(x + sa(x))
    return ln2(x + ff(x))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
def test_encoder_layer_matches_reference(norm_first, batch_first):
    rng = np.random.default_rng(31)
    B, T, E, H = 2, 4, 8, 2
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=12, dropout=0.0, batch_first=batch_first, norm_first=norm_first, dtype=F64)
    p = randomize(layer, rng)
    x = rng.standard_normal((B, T, E))
    expected = np_encoder_layer(x, p, H, norm_first)
    if batch_first:
        out = layer(t64(x))
    else:
        out = layer(t64(x.transpose(1, 0, 2)))
        expected = expected.transpose(1, 0, 2)
    assert_np_close(to_np(out), expected, 1e-9, 1e-10)


def test_encoder_layer_float32():
    rng = np.random.default_rng(41)
    B, T, E, H = 3, 7, 16, 4
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=True)
    p = randomize(layer, rng)
    p = {k: v.astype(np.float32).astype(np.float64) for k, v in p.items()}  # the float32 values it holds
    x = rng.standard_normal((B, T, E)).astype(np.float32)
    out = layer(pyzen.tensor(x), is_causal=True)
    assert out.dtype == pyzen.float32
    causal = bool_to_additive(np.triu(np.ones((T, T), dtype=bool), 1))
    assert_np_close(to_np(out), np_encoder_layer(x.astype(np.float64), p, H, True, mask=causal), 1e-4, 1e-4)


def test_encoder_layer_gelu_and_causal_mask():
    rng = np.random.default_rng(32)
    B, T, E, H = 2, 5, 8, 4
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True, dtype=F64)
    p = randomize(layer, rng)
    x = rng.standard_normal((B, T, E))
    causal = np.triu(np.ones((T, T), dtype=bool), 1)
    expected = np_encoder_layer(x, p, H, True, act=np_gelu, mask=bool_to_additive(causal))
    assert_np_close(to_np(layer(t64(x), src_mask=pyzen.tensor(causal))), expected, 1e-9, 1e-10)
    assert_np_close(to_np(layer(t64(x), src_mask=pyzen.tensor(causal), is_causal=True)), expected, 1e-9, 1e-10)


def test_encoder_layer_key_padding_mask():
    rng = np.random.default_rng(33)
    B, T, E, H = 2, 4, 8, 2
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=8, dropout=0.0, batch_first=True, dtype=F64)
    p = randomize(layer, rng)
    x = rng.standard_normal((B, T, E))
    pad = np.array([[False, False, True, True], [False, False, False, False]])
    expected = np_encoder_layer(x, p, H, False, mask=bool_to_additive(pad)[:, None, None, :])
    assert_np_close(to_np(layer(t64(x), src_key_padding_mask=pyzen.tensor(pad))), expected, 1e-9, 1e-10)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradients_reach_all_parameters(norm_first):
    rng = np.random.default_rng(34)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=F64)
    randomize(layer, rng)
    x = t64(rng.standard_normal((2, 3, 8)), requires_grad=True)
    y = layer(x)
    (y * t64(rng.standard_normal((2, 3, 8)))).sum().backward()
    names = [n for n, _ in layer.named_parameters()]
    assert len(names) == 12
    for name, prm in layer.named_parameters():
        assert prm.grad is not None, name
        assert tuple(prm.grad.shape) == tuple(prm.shape), name
        assert np.isfinite(to_np(prm.grad)).all() and np.abs(to_np(prm.grad)).sum() > 0, name
    assert x.grad is not None and np.abs(to_np(x.grad)).sum() > 0


def test_encoder_layer_gradcheck_small():
    rng = np.random.default_rng(35)
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, batch_first=True, norm_first=True, dtype=F64)
    randomize(layer, rng)
    x = t64(rng.standard_normal((1, 3, 4)), requires_grad=True)
    assert pyzen.autograd.gradcheck(layer, (x,))


def test_encoder_layer_dropout_active_in_train_only():
    rng = np.random.default_rng(36)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.5, batch_first=True, dtype=F64)
    p = randomize(layer, rng)
    x = rng.standard_normal((2, 3, 8))
    layer.eval()
    assert_np_close(to_np(layer(t64(x))), np_encoder_layer(x, p, 2, False), 1e-9, 1e-10)
    layer.train()
    assert not np.allclose(to_np(layer(t64(x))), np_encoder_layer(x, p, 2, False))


def test_encoder_layer_rejects_unknown_activation():
    with pytest.raises(ValueError):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


def test_encoder_layer_is_causal_without_mask():
    """pyzen extension (used by its GPT block): is_causal=True alone applies the causal mask."""
    rng = np.random.default_rng(38)
    B, T, E, H = 2, 5, 8, 2
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=8, dropout=0.0, batch_first=True, norm_first=True, dtype=F64)
    p = randomize(layer, rng)
    x = rng.standard_normal((B, T, E))
    expected = np_encoder_layer(x, p, H, True, mask=bool_to_additive(np.triu(np.ones((T, T), dtype=bool), 1)))
    assert_np_close(to_np(layer(t64(x), is_causal=True)), expected, 1e-9, 1e-10)


def test_sequential_slice_keeps_original_names():
    model = nn.Sequential(nn.ReLU(), nn.Linear(2, 2), nn.Linear(2, 1))
    assert list(model[1:].state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]


# ------------------------------------------------------------------ random configurations
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(b=st.integers(1, 3), tq=st.integers(1, 5), tk=st.integers(1, 5), heads=st.sampled_from([1, 2, 4]), head_dim=st.integers(1, 3),
       batch_first=st.booleans(), need_weights=st.booleans(), pad=st.booleans(), seed=st.integers(0, 2**16))
def test_mha_random_configurations(b, tq, tk, heads, head_dim, batch_first, need_weights, pad, seed):
    rng = np.random.default_rng(seed)
    E = heads * head_dim
    mha = nn.MultiheadAttention(E, heads, batch_first=batch_first, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, b, tq, tk, E)
    kpm, mask = None, None
    if pad:
        kpm = rng.random((b, tk)) < 0.4
        kpm[:, 0] = False  # every batch keeps one key
        mask = bool_to_additive(kpm)[:, None, None, :]
    exp_out, probs = np_mha(q, k, v, p, heads, mask)
    seq_first = (lambda a: a) if batch_first else (lambda a: a.transpose(1, 0, 2))
    out, w = mha(t64(seq_first(q)), t64(seq_first(k)), t64(seq_first(v)), key_padding_mask=None if kpm is None else pyzen.tensor(kpm), need_weights=need_weights)
    assert_np_close(to_np(out), seq_first(exp_out), 1e-9, 1e-10)
    if need_weights:
        assert_np_close(to_np(w), probs.mean(1), 1e-9, 1e-10)
    else:
        assert w is None


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_3d_attn_mask_per_batch_and_head(need_weights):
    """PyTorch takes a 3-D attn_mask of shape (N * num_heads, L, S): one mask per batch element and head."""
    rng = np.random.default_rng(40)
    B, Tq, Tk, E, H = 2, 3, 4, 6, 3
    mha = nn.MultiheadAttention(E, H, batch_first=True, dtype=F64)
    p = randomize(mha, rng)
    q, k, v = _mha_inputs(rng, B, Tq, Tk, E)
    masked = rng.random((B * H, Tq, Tk)) < 0.4
    masked[..., 0] = False
    exp_out, probs = np_mha(q, k, v, p, H, bool_to_additive(masked).reshape(B, H, Tq, Tk))
    out, w = mha(t64(q), t64(k), t64(v), attn_mask=pyzen.tensor(masked), need_weights=need_weights)
    assert_np_close(to_np(out), exp_out, 1e-9, 1e-10)
    if need_weights:
        assert_np_close(to_np(w), probs.mean(1), 1e-9, 1e-10)
