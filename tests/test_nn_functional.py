"""nn.functional against NumPy float64 references written from PyTorch's documented
formulas; gradients checked with pyzen.autograd.gradcheck (float64, small shapes) and,
where the formula is short, against an analytic NumPy gradient. Also clip_grad_norm_,
the loss modules, and the errors for bad shapes, reductions and class indices."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyzen
import pyzen.nn as nn
import pyzen.nn.functional as F
from pyzen.autograd import gradcheck
from conftest import assert_np_close, to_np

F64 = pyzen.float64
R64, A64 = 1e-10, 1e-12


def t64(a, requires_grad=False):
    return pyzen.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def idx(a):
    return pyzen.tensor(np.asarray(a, dtype=np.int64))


# ------------------------------------------------------------------ NumPy references
def np_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax(x, axis))


def np_layer_norm(x, n_dims, weight=None, bias=None, eps=1e-5):
    axes = tuple(range(x.ndim - n_dims, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + eps)
    return y * (1 if weight is None else weight) + (0 if bias is None else bias)


def np_sdpa(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + bias) v; bool mask True = attend; causal = top-left tril(ones(L, S))."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    L, S = s.shape[-2:]
    if is_causal:
        s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    return np_softmax(s, -1) @ v


def np_reduce(loss, reduction):
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def np_cross_entropy(logits, target, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """logits (N, C, d...) and target (N, d...) of class indices, PyTorch's formula:
    (1 - eps) * (-log p[target]) + eps * mean_c(-log p[c]); ignored entries contribute 0 and
    are left out of the mean's denominator."""
    if logits.ndim == 1:
        logits, target = logits[None], np.asarray(target).reshape(1)
    x = np.moveaxis(logits, 1, -1)  # (..., C)
    logp = np_log_softmax(x, -1)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    nll = -np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    smooth = -logp.mean(-1)
    loss = np.where(valid, (1 - label_smoothing) * nll + label_smoothing * smooth, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / valid.sum() if valid.sum() else np.nan


def np_bce(p, t):
    return -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100))


def np_bce_logits(x, t, pos_weight=None):
    log_sig = -np.logaddexp(0.0, -x)  # log sigmoid(x)
    log_one_minus_sig = -np.logaddexp(0.0, x)  # log(1 - sigmoid(x))
    pw = 1.0 if pos_weight is None else pos_weight
    return -(pw * t * log_sig + (1 - t) * log_one_minus_sig)


# ------------------------------------------------------------------ linear
@pytest.mark.parametrize("x_shape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear(x_shape, with_bias):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal((4, 5)), rng.standard_normal(4)
    out = F.linear(t64(x), t64(w), t64(b) if with_bias else None)
    assert tuple(out.shape) == x_shape[:-1] + (4,)
    assert_np_close(to_np(out), x @ w.T + (b if with_bias else 0), R64, A64)


def test_linear_float32():
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((6, 7), (3, 7), (3,)))
    out = F.linear(pyzen.tensor(x), pyzen.tensor(w), pyzen.tensor(b))
    assert out.dtype == pyzen.float32
    assert_np_close(to_np(out), x.astype(np.float64) @ w.astype(np.float64).T + b, 1e-5, 1e-5)


def test_linear_gradcheck():
    rng = np.random.default_rng(2)
    x, w, b = (t64(rng.standard_normal(s), True) for s in ((2, 3, 4), (5, 4), (5,)))
    assert gradcheck(F.linear, (x, w, b))
    assert gradcheck(lambda a, c: F.linear(a, c), (x, w))


# ------------------------------------------------------------------ layer_norm
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
def test_layer_norm(affine):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 6)) * 2 + 0.5
    w = rng.standard_normal(6) if affine != "none" else None
    b = rng.standard_normal(6) if affine == "both" else None
    out = F.layer_norm(t64(x), (6,), None if w is None else t64(w), None if b is None else t64(b), eps=1e-5)
    assert_np_close(to_np(out), np_layer_norm(x, 1, w, b), 1e-9, 1e-10)


def test_layer_norm_int_shape_and_eps():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 8)) * 0.2
    assert_np_close(to_np(F.layer_norm(t64(x), 8, eps=0.05)), np_layer_norm(x, 1, eps=0.05), 1e-9, 1e-10)


def test_layer_norm_multi_dim():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    out = F.layer_norm(t64(x), (3, 4), t64(w), t64(b))
    assert_np_close(to_np(out), np_layer_norm(x, 2, w, b), 1e-9, 1e-10)


def test_layer_norm_1d_input():
    x = np.array([1.0, -2.0, 0.5, 4.0])
    assert_np_close(to_np(F.layer_norm(t64(x), (4,))), np_layer_norm(x, 1), 1e-9, 1e-10)


def test_layer_norm_constant_rows_are_finite():
    x = t64(np.full((2, 5), 3.0), True)
    w = t64(np.arange(1.0, 6.0), True)
    out = F.layer_norm(x, (5,), w)
    np.testing.assert_allclose(to_np(out), np.zeros((2, 5)), atol=1e-6)
    g = np.random.default_rng(45).standard_normal((2, 5))
    out.backward(t64(g))
    gy = g * np.arange(1.0, 6.0)  # xhat = 0, rstd = 1/sqrt(eps): dx = rstd * (gy - mean(gy))
    assert_np_close(to_np(x.grad), (gy - gy.mean(-1, keepdims=True)) / math.sqrt(1e-5), 1e-8, 1e-8)
    np.testing.assert_allclose(to_np(w.grad), np.zeros(5), atol=1e-12)


def test_layer_norm_float32_large_offset():
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((4, 64)) + 1000.0).astype(np.float32)
    out = to_np(F.layer_norm(pyzen.tensor(x), (64,)))
    assert_np_close(out, np_layer_norm(x.astype(np.float64), 1), 2e-3, 2e-3)


def test_layer_norm_gradcheck():
    rng = np.random.default_rng(7)
    x, w, b = t64(rng.standard_normal((3, 5)), True), t64(rng.standard_normal(5), True), t64(rng.standard_normal(5), True)
    assert gradcheck(lambda a, c, d: F.layer_norm(a, (5,), c, d), (x, w, b))
    assert gradcheck(lambda a: F.layer_norm(a, (5,)), (x,))
    assert gradcheck(lambda a, c: F.layer_norm(a, (5,), c, None), (x, w))


def test_layer_norm_multi_dim_gradcheck():
    rng = np.random.default_rng(8)
    x, w, b = t64(rng.standard_normal((2, 2, 3)), True), t64(rng.standard_normal((2, 3)), True), t64(rng.standard_normal((2, 3)), True)
    assert gradcheck(lambda a, c, d: F.layer_norm(a, (2, 3), c, d), (x, w, b))


# ------------------------------------------------------------------ scaled_dot_product_attention
@pytest.mark.parametrize("shape_q,shape_kv", [((2, 3, 4, 8), (2, 3, 4, 8)), ((2, 2, 3, 4), (2, 2, 5, 4)), ((3, 6, 4), (3, 6, 4))])
def test_sdpa(shape_q, shape_kv):
    rng = np.random.default_rng(9)
    q, k = rng.standard_normal(shape_q), rng.standard_normal(shape_kv)
    v = rng.standard_normal(shape_kv[:-1] + (5,))
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v))
    assert_np_close(to_np(out), np_sdpa(q, k, v), 1e-9, 1e-10)


def test_sdpa_float32():
    rng = np.random.default_rng(10)
    q, k, v = (rng.standard_normal((2, 2, 16, 8)).astype(np.float32) for _ in range(3))
    out = F.scaled_dot_product_attention(pyzen.tensor(q), pyzen.tensor(k), pyzen.tensor(v), is_causal=True)
    assert out.dtype == pyzen.float32
    ref = np_sdpa(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), is_causal=True)
    assert_np_close(to_np(out), ref, 1e-4, 1e-5)


@pytest.mark.parametrize("tq,tk", [(4, 4), (3, 5)])
def test_sdpa_is_causal(tq, tk):
    rng = np.random.default_rng(11)
    q, k, v = rng.standard_normal((2, tq, 4)), rng.standard_normal((2, tk, 4)), rng.standard_normal((2, tk, 4))
    out = to_np(F.scaled_dot_product_attention(t64(q), t64(k), t64(v), is_causal=True))
    assert_np_close(out, np_sdpa(q, k, v, is_causal=True), 1e-9, 1e-10)
    np.testing.assert_allclose(out[:, 0], v[:, 0], rtol=1e-12)  # first query sees only the first key


def test_sdpa_bool_mask_true_means_attend():
    rng = np.random.default_rng(12)
    q, k, v = (rng.standard_normal((2, 2, 4, 3)) for _ in range(3))
    mask = rng.random((4, 4)) < 0.6
    mask[:, 1] = True
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=pyzen.tensor(mask))
    assert_np_close(to_np(out), np_sdpa(q, k, v, mask=mask), 1e-9, 1e-10)


def test_sdpa_float_mask_is_added():
    rng = np.random.default_rng(13)
    q, k, v = (rng.standard_normal((2, 2, 4, 3)) for _ in range(3))
    mask = rng.standard_normal((2, 1, 4, 4))  # broadcasts over heads
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=t64(mask))
    assert_np_close(to_np(out), np_sdpa(q, k, v, mask=mask), 1e-9, 1e-10)


def test_sdpa_float32_mask_with_float64_inputs():
    rng = np.random.default_rng(14)
    q, k, v = (rng.standard_normal((1, 3, 2)) for _ in range(3))
    mask = rng.standard_normal((3, 3)).astype(np.float32)
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=pyzen.tensor(mask))
    assert_np_close(to_np(out), np_sdpa(q, k, v, mask=mask.astype(np.float64)), 1e-9, 1e-10)


def test_sdpa_scale_argument():
    rng = np.random.default_rng(15)
    q, k, v = (rng.standard_normal((2, 4, 6)) for _ in range(3))
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), scale=0.7)
    assert_np_close(to_np(out), np_sdpa(q, k, v, scale=0.7), 1e-9, 1e-10)
    assert not np.allclose(to_np(out), np_sdpa(q, k, v))


@pytest.mark.parametrize("variant", ["plain", "causal", "bool_mask", "float_mask", "scale"])
def test_sdpa_gradcheck(variant):
    rng = np.random.default_rng(16)
    q, k, v = (t64(rng.standard_normal((1, 2, 3, 4)), True) for _ in range(3))
    kw = {}
    if variant == "causal":
        kw["is_causal"] = True
    elif variant == "bool_mask":
        kw["attn_mask"] = pyzen.tensor(np.array([[True, False, True], [True, True, False], [False, True, True]]))
    elif variant == "float_mask":
        kw["attn_mask"] = t64(rng.standard_normal((3, 3)))
    elif variant == "scale":
        kw["scale"] = 0.3
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kw), (q, k, v))


@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_gradcheck_different_query_and_key_lengths(is_causal):
    rng = np.random.default_rng(17)
    q = t64(rng.standard_normal((1, 2, 2, 3)), True)
    k, v = (t64(rng.standard_normal((1, 2, 4, 3)), True) for _ in range(2))
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=is_causal), (q, k, v))


def test_sdpa_gradients_match_analytic_reference():
    rng = np.random.default_rng(18)
    qn, kn, vn, g = (rng.standard_normal((2, 3, 4)) for _ in range(4))
    q, k, v = t64(qn, True), t64(kn, True), t64(vn, True)
    F.scaled_dot_product_attention(q, k, v).backward(t64(g))
    s = qn @ kn.transpose(0, 2, 1) / 2.0
    p = np_softmax(s, -1)
    dv = p.transpose(0, 2, 1) @ g
    dp = g @ vn.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True)) / 2.0
    assert_np_close(to_np(v.grad), dv, 1e-9, 1e-10)
    assert_np_close(to_np(q.grad), ds @ kn, 1e-9, 1e-10)
    assert_np_close(to_np(k.grad), ds.transpose(0, 2, 1) @ qn, 1e-9, 1e-10)


def test_sdpa_errors():
    q = pyzen.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(q, pyzen.randn(2, 3, 5), pyzen.randn(2, 3, 4))
    with pytest.raises(RuntimeError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=pyzen.ones(3, 3), is_causal=True)


# ------------------------------------------------------------------ cross_entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy(reduction, label_smoothing):
    rng = np.random.default_rng(19)
    x = rng.standard_normal((6, 5)) * 3
    t = rng.integers(0, 5, 6)
    out = F.cross_entropy(t64(x), idx(t), reduction=reduction, label_smoothing=label_smoothing)
    expected = np_cross_entropy(x, t, label_smoothing=label_smoothing, reduction=reduction)
    assert_np_close(to_np(out), expected, 1e-9, 1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_ignore_index(reduction, label_smoothing):
    rng = np.random.default_rng(20)
    x = rng.standard_normal((7, 4))
    t = np.array([0, -100, 3, 2, -100, 1, 3])
    out = F.cross_entropy(t64(x), idx(t), reduction=reduction, label_smoothing=label_smoothing)
    expected = np_cross_entropy(x, t, label_smoothing=label_smoothing, reduction=reduction)
    assert_np_close(to_np(out), expected, 1e-9, 1e-10)
    if reduction == "none":
        assert np.all(to_np(out)[t == -100] == 0.0)
    if reduction == "mean":  # the mean is over the 5 kept rows, not all 7
        kept = np_cross_entropy(x, t, label_smoothing=label_smoothing, reduction="none")
        assert_np_close(to_np(out), kept.sum() / 5, 1e-9, 1e-10)


def test_cross_entropy_custom_ignore_index():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((4, 3))
    t = np.array([2, 1, 2, 0])
    out = F.cross_entropy(t64(x), idx(t), ignore_index=2)
    assert_np_close(to_np(out), np_cross_entropy(x, t, ignore_index=2), 1e-9, 1e-10)


def test_cross_entropy_all_ignored_mean_is_nan():
    out = F.cross_entropy(t64(np.zeros((2, 3))), idx([-100, -100]))
    assert np.isnan(to_np(out))
    assert to_np(F.cross_entropy(t64(np.zeros((2, 3))), idx([-100, -100]), reduction="sum")) == 0.0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_spatial(reduction):
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2, 4, 3, 5))  # (N, C, d1, d2)
    t = rng.integers(0, 4, (2, 3, 5))
    t[0, 1, 2] = -100
    out = F.cross_entropy(t64(x), idx(t), reduction=reduction, label_smoothing=0.05)
    expected = np_cross_entropy(x, t, label_smoothing=0.05, reduction=reduction)
    if reduction == "none":
        assert tuple(out.shape) == (2, 3, 5)
    assert_np_close(to_np(out), expected, 1e-9, 1e-10)


def test_cross_entropy_unbatched():
    x = np.array([0.5, -1.0, 2.0])
    out = F.cross_entropy(t64(x), idx(2))
    assert tuple(out.shape) == ()
    assert_np_close(to_np(out), -np_log_softmax(x)[2], 1e-12, 1e-12)


def test_cross_entropy_with_minus_inf_logits():
    """Masked-out classes (logit -inf) that are not the target: finite loss and gradient (0 there)."""
    x_np = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]])
    t = np.array([0, 1])
    x = t64(x_np, True)
    loss = F.cross_entropy(x, idx(t))
    p = np.exp(np_log_softmax(np.where(np.isinf(x_np), -1e300, x_np)))
    assert_np_close(to_np(loss), -np.log(p[[0, 1], t]).mean(), 1e-12, 1e-12)
    loss.backward()
    assert_np_close(to_np(x.grad), (p - np.eye(3)[t]) / 2, 1e-12, 1e-12)


def test_cross_entropy_float32_and_extreme_logits():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    t = np.array([2, 1])
    out = F.cross_entropy(pyzen.tensor(x), idx(t), reduction="none")
    assert out.dtype == pyzen.float32
    assert_np_close(to_np(out), np_cross_entropy(x.astype(np.float64), t, reduction="none"), 1e-6, 1e-5)


def test_cross_entropy_gradient_matches_analytic():
    rng = np.random.default_rng(23)
    x_np = rng.standard_normal((5, 4))
    t = np.array([1, -100, 3, 0, 3])
    eps = 0.1
    x = t64(x_np, True)
    F.cross_entropy(x, idx(t), label_smoothing=eps).backward()
    target = (1 - eps) * np.eye(4)[np.where(t >= 0, t, 0)] + eps / 4
    expected = (np_softmax(x_np) - target) * (t >= 0)[:, None] / 4  # 4 kept rows
    assert_np_close(to_np(x.grad), expected, 1e-9, 1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradcheck(reduction):
    rng = np.random.default_rng(24)
    x = t64(rng.standard_normal((5, 4)), True)
    t = idx([1, -100, 3, 0, 2])
    assert gradcheck(lambda a: F.cross_entropy(a, t, reduction=reduction, label_smoothing=0.15), (x,))
    assert gradcheck(lambda a: F.cross_entropy(a, t, reduction=reduction), (x,))


def test_cross_entropy_spatial_gradcheck():
    rng = np.random.default_rng(25)
    x = t64(rng.standard_normal((2, 3, 2)), True)
    t = idx([[0, 2], [-100, 1]])
    assert gradcheck(lambda a: F.cross_entropy(a, t, label_smoothing=0.1), (x,))


def test_cross_entropy_target_out_of_range_raises():
    x = pyzen.randn(3, 4)
    with pytest.raises(IndexError, match="cross_entropy"):
        F.cross_entropy(x, idx([0, 4, 1]))
    with pytest.raises(IndexError, match="cross_entropy"):
        F.cross_entropy(x, idx([0, -1, 1]))


def test_cross_entropy_batch_mismatch_raises():
    with pytest.raises((RuntimeError, ValueError), match="cross_entropy"):
        F.cross_entropy(pyzen.randn(3, 4), idx([0, 1]))


def test_cross_entropy_loss_module():
    rng = np.random.default_rng(26)
    x = rng.standard_normal((4, 3))
    t = np.array([0, 2, -1, 1])
    loss = nn.CrossEntropyLoss(ignore_index=-1, reduction="sum", label_smoothing=0.3)
    assert_np_close(to_np(loss(t64(x), idx(t))), np_cross_entropy(x, t, -1, 0.3, "sum"), 1e-9, 1e-10)


# ------------------------------------------------------------------ nll_loss
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(reduction):
    rng = np.random.default_rng(27)
    logp = np_log_softmax(rng.standard_normal((5, 3)))
    t = np.array([0, 2, -100, 1, 2])
    valid = t != -100
    per = np.where(valid, -logp[np.arange(5), np.where(valid, t, 0)], 0.0)
    expected = {"none": per, "sum": per.sum(), "mean": per.sum() / valid.sum()}[reduction]
    assert_np_close(to_np(F.nll_loss(t64(logp), idx(t), reduction=reduction)), expected, R64, A64)
    assert_np_close(to_np(nn.NLLLoss(reduction=reduction)(t64(logp), idx(t))), expected, R64, A64)


def test_nll_loss_spatial_and_unbatched():
    # PyTorch's nll_loss takes (N, C, d1, ...) with target (N, d1, ...), and (C,) with a 0-d target
    rng = np.random.default_rng(42)
    logp = np_log_softmax(rng.standard_normal((2, 3, 4)), 1)
    t = rng.integers(0, 3, (2, 4))
    per = -np.take_along_axis(logp, t[:, None, :], 1)[:, 0, :]
    assert_np_close(to_np(F.nll_loss(t64(logp), idx(t), reduction="none")), per, R64, A64)
    assert_np_close(to_np(F.nll_loss(t64(logp), idx(t))), per.mean(), R64, A64)
    assert_np_close(to_np(F.nll_loss(t64(logp[0, :, 0]), idx(t[0, 0]))), per[0, 0], R64, A64)


def test_nll_loss_gradient():
    x_np = np.random.default_rng(28).standard_normal((4, 3))
    t = np.array([2, 0, -100, 2])
    x = t64(x_np, True)
    F.nll_loss(x, idx(t)).backward()
    expected = np.zeros((4, 3))
    for i, c in enumerate(t):
        if c >= 0:
            expected[i, c] = -1.0 / 3
    assert_np_close(to_np(x.grad), expected, R64, A64)


def test_nll_loss_log_softmax_equals_cross_entropy():
    rng = np.random.default_rng(29)
    x = t64(rng.standard_normal((6, 4)))
    t = idx(rng.integers(0, 4, 6))
    assert_np_close(to_np(F.nll_loss(F.log_softmax(x, 1), t)), to_np(F.cross_entropy(x, t)), 1e-12, 1e-12)


def test_nll_loss_target_out_of_range_raises():
    with pytest.raises(IndexError, match="nll_loss"):
        F.nll_loss(pyzen.randn(2, 3), idx([0, 3]))


# ------------------------------------------------------------------ mse / l1
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_l1(reduction):
    rng = np.random.default_rng(30)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert_np_close(to_np(F.mse_loss(t64(a), t64(b), reduction=reduction)), np_reduce((a - b) ** 2, reduction), R64, A64)
    assert_np_close(to_np(F.l1_loss(t64(a), t64(b), reduction=reduction)), np_reduce(np.abs(a - b), reduction), R64, A64)
    assert_np_close(to_np(nn.MSELoss(reduction)(t64(a), t64(b))), np_reduce((a - b) ** 2, reduction), R64, A64)
    assert_np_close(to_np(nn.L1Loss(reduction)(t64(a), t64(b))), np_reduce(np.abs(a - b), reduction), R64, A64)


def test_mse_and_l1_gradients():
    rng = np.random.default_rng(31)
    a_np, b_np = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    a, b = t64(a_np, True), t64(b_np, True)
    F.mse_loss(a, b).backward()
    assert_np_close(to_np(a.grad), 2 * (a_np - b_np) / 12, R64, A64)
    assert_np_close(to_np(b.grad), -2 * (a_np - b_np) / 12, R64, A64)
    a2 = t64(a_np, True)
    F.l1_loss(a2, t64(b_np), reduction="sum").backward()
    assert_np_close(to_np(a2.grad), np.sign(a_np - b_np), R64, A64)


def test_mse_and_l1_gradcheck():
    rng = np.random.default_rng(32)
    a = t64(rng.standard_normal((2, 3)), True)
    b_np = a.detach().numpy() + rng.choice([-1, 1], (2, 3)) * rng.uniform(0.2, 1.0, (2, 3))  # |a - b| >= 0.2: away from l1's kink
    b = t64(b_np, True)
    for red in ("mean", "sum", "none"):
        assert gradcheck(lambda x, y: F.mse_loss(x, y, reduction=red), (a, b))
        assert gradcheck(lambda x, y: F.l1_loss(x, y, reduction=red), (a, b))


# ------------------------------------------------------------------ binary cross-entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy(reduction):
    rng = np.random.default_rng(33)
    p, t = rng.uniform(0.01, 0.99, (3, 4)), rng.uniform(0, 1, (3, 4))
    assert_np_close(to_np(F.binary_cross_entropy(t64(p), t64(t), reduction=reduction)), np_reduce(np_bce(p, t), reduction), 1e-9, 1e-10)
    assert_np_close(to_np(nn.BCELoss(reduction)(t64(p), t64(t))), np_reduce(np_bce(p, t), reduction), 1e-9, 1e-10)


def test_binary_cross_entropy_log_is_clamped_at_minus_100():
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    out = to_np(F.binary_cross_entropy(t64(p), t64(t), reduction="none"))
    assert np.isfinite(out).all()
    assert_np_close(out, [100.0, 100.0, 0.0, 0.0, 100.0], 1e-12, 1e-12)


def test_binary_cross_entropy_gradient_is_finite_at_0_and_1():
    """PyTorch's backward is (p - t) / max(p (1 - p), 1e-12): finite where the probability saturates."""
    p_np, t_np = np.array([0.0, 0.5, 1.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    p = t64(p_np, True)
    F.binary_cross_entropy(p, t64(t_np), reduction="sum").backward()
    g = to_np(p.grad)
    assert np.isfinite(g).all(), g
    assert_np_close(g, (p_np - t_np) / np.maximum(p_np * (1 - p_np), 1e-12), 1e-9, 1e-9)


def test_binary_cross_entropy_gradient_and_gradcheck():
    rng = np.random.default_rng(34)
    p_np, t_np = rng.uniform(0.1, 0.9, (2, 3)), rng.uniform(0, 1, (2, 3))
    p = t64(p_np, True)
    F.binary_cross_entropy(p, t64(t_np), reduction="sum").backward()
    assert_np_close(to_np(p.grad), (p_np - t_np) / (p_np * (1 - p_np)), 1e-9, 1e-10)
    p2 = t64(p_np, True)
    assert gradcheck(lambda x: F.binary_cross_entropy(x, t64(t_np)), (p2,))


def test_binary_cross_entropy_rejects_out_of_range_input():
    with pytest.raises((ValueError, RuntimeError), match="binary_cross_entropy"):
        F.binary_cross_entropy(t64([0.5, 1.5]), t64([0.0, 1.0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(reduction):
    rng = np.random.default_rng(35)
    x, t = rng.standard_normal((3, 4)) * 4, rng.uniform(0, 1, (3, 4))
    out = F.binary_cross_entropy_with_logits(t64(x), t64(t), reduction=reduction)
    assert_np_close(to_np(out), np_reduce(np_bce_logits(x, t), reduction), 1e-9, 1e-10)
    assert_np_close(to_np(nn.BCEWithLogitsLoss(reduction)(t64(x), t64(t))), np_reduce(np_bce_logits(x, t), reduction), 1e-9, 1e-10)


def test_bce_with_logits_is_stable_at_large_logits():
    x = np.array([100.0, -100.0, 100.0, -100.0, 0.0])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.5])
    for dtype in (pyzen.float32, F64):
        xt = pyzen.tensor(x, dtype=dtype, requires_grad=True)
        out = F.binary_cross_entropy_with_logits(xt, pyzen.tensor(t, dtype=dtype), reduction="none")
        assert np.isfinite(to_np(out)).all()
        assert_np_close(to_np(out), np_bce_logits(x, t), 1e-6, 1e-6)
        out.sum().backward()
        sig = 1 / (1 + np.exp(-x))
        assert np.isfinite(to_np(xt.grad)).all()
        assert_np_close(to_np(xt.grad), sig - t, 1e-6, 1e-6)


def test_bce_with_logits_pos_weight():
    rng = np.random.default_rng(36)
    x, t = rng.standard_normal((4, 3)) * 2, (rng.random((4, 3)) < 0.5).astype(np.float64)
    pw = np.array([0.5, 2.0, 3.0])  # one weight per class, broadcast over the batch
    out = F.binary_cross_entropy_with_logits(t64(x), t64(t), reduction="none", pos_weight=t64(pw))
    assert_np_close(to_np(out), np_bce_logits(x, t, pw), 1e-9, 1e-10)
    mod = nn.BCEWithLogitsLoss(pos_weight=t64(pw))
    assert_np_close(to_np(mod(t64(x), t64(t))), np_bce_logits(x, t, pw).mean(), 1e-9, 1e-10)


def test_bce_with_logits_gradcheck():
    rng = np.random.default_rng(37)
    x = t64(rng.standard_normal((2, 3)) * 3, True)
    t = t64(rng.uniform(0, 1, (2, 3)), True)
    pw = t64(rng.uniform(0.5, 2, 3), True)
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b), (x, t))
    assert gradcheck(lambda a, b, c: F.binary_cross_entropy_with_logits(a, b, pos_weight=c, reduction="sum"), (x, t, pw))


# ------------------------------------------------------------------ one_hot, dropout, embedding, softmax
def test_one_hot():
    out = F.one_hot(idx([0, 2, 1, 2]), 4)
    assert out.dtype == pyzen.int64 and tuple(out.shape) == (4, 4)
    np.testing.assert_array_equal(to_np(out), np.eye(4, dtype=np.int64)[[0, 2, 1, 2]])
    inferred = F.one_hot(idx([[1, 3], [0, 0]]))
    assert tuple(inferred.shape) == (2, 2, 4)
    np.testing.assert_array_equal(to_np(inferred), np.eye(4, dtype=np.int64)[[[1, 3], [0, 0]]])


def test_one_hot_out_of_range_raises():
    with pytest.raises((ValueError, RuntimeError), match="one_hot"):
        F.one_hot(idx([0, 3]), 3)
    with pytest.raises((ValueError, RuntimeError), match="one_hot"):
        F.one_hot(idx([0, -1]), 3)


def test_dropout_functional():
    x = pyzen.randn(10, 10)
    np.testing.assert_array_equal(to_np(F.dropout(x, 0.5, training=False)), to_np(x))
    out = to_np(F.dropout(pyzen.ones(100_000), 0.25)).astype(np.float64)
    assert abs((out == 0).mean() - 0.25) < 0.01
    assert_np_close(out[out != 0], np.full((out != 0).sum(), 1 / 0.75), 1e-6, 1e-6)
    with pytest.raises(ValueError, match="dropout"):
        F.dropout(x, 1.5)


def test_embedding_functional():
    rng = np.random.default_rng(38)
    w_np = rng.standard_normal((5, 3))
    i = np.array([[4, 0], [4, 4]])
    w = t64(w_np, True)
    out = F.embedding(idx(i), w, padding_idx=0)
    assert_np_close(to_np(out), w_np[i], 0, 0)
    g = rng.standard_normal((2, 2, 3))
    out.backward(t64(g))
    expected = np.zeros((5, 3))
    np.add.at(expected, i.reshape(-1), g.reshape(-1, 3))
    expected[0] = 0.0
    assert_np_close(to_np(w.grad), expected, R64, A64)


def test_embedding_gradcheck():
    w = t64(np.random.default_rng(43).standard_normal((4, 3)), True)
    i = idx([[3, 1, 3], [0, 3, 2]])
    assert gradcheck(lambda a: F.embedding(i, a), (w,))  # (padding_idx deliberately breaks the true gradient)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_softmax_and_log_softmax(dim):
    rng = np.random.default_rng(39)
    x = rng.standard_normal((2, 3, 4)) * 4
    assert_np_close(to_np(F.softmax(t64(x), dim)), np_softmax(x, dim), 1e-10, 1e-12)
    assert_np_close(to_np(F.log_softmax(t64(x), dim=dim)), np_log_softmax(x, dim), 1e-10, 1e-12)


def test_softmax_gradcheck():
    x = t64(np.random.default_rng(40).standard_normal((3, 4)), True)
    assert gradcheck(lambda a: F.softmax(a, 1), (x,))
    assert gradcheck(lambda a: F.log_softmax(a, 0), (x,))


def test_activations_functional():
    x = np.linspace(-3, 3, 11) + 0.05
    assert_np_close(to_np(F.relu(t64(x))), np.maximum(x, 0), R64, A64)
    assert_np_close(to_np(F.sigmoid(t64(x))), 1 / (1 + np.exp(-x)), R64, A64)
    assert_np_close(to_np(F.silu(t64(x))), x / (1 + np.exp(-x)), R64, A64)
    assert_np_close(to_np(F.tanh(t64(x))), np.tanh(x), R64, A64)
    erf = np.vectorize(math.erf)
    assert_np_close(to_np(F.gelu(t64(x))), 0.5 * x * (1 + erf(x / math.sqrt(2))), 1e-10, 1e-12)
    tanh_ref = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert_np_close(to_np(F.gelu(t64(x), approximate="tanh")), tanh_ref, 1e-10, 1e-12)


# ------------------------------------------------------------------ clip_grad_norm_
def _params_with_grads(grads):
    params = []
    for g in grads:
        p = nn.Parameter(t64(np.zeros_like(g)))
        p.grad = t64(np.array(g, dtype=np.float64))
        params.append(p)
    return params


def test_clip_grad_norm_scales_to_max_norm():
    rng = np.random.default_rng(41)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    params = _params_with_grads(grads)
    total = math.sqrt(sum((g**2).sum() for g in grads))
    assert total > 1.0
    returned = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert isinstance(returned, pyzen.Tensor)
    assert_np_close(to_np(returned), total, 1e-10, 1e-12)
    coef = 1.0 / (total + 1e-6)
    for p, g in zip(params, grads):
        assert_np_close(to_np(p.grad), g * coef, 1e-10, 1e-12)
    new_norm = math.sqrt(sum((to_np(p.grad) ** 2).sum() for p in params))
    assert new_norm <= 1.0 and new_norm > 1.0 - 1e-5


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = [np.array([0.1, -0.2]), np.array([[0.05]])]
    params = _params_with_grads(grads)
    returned = nn.utils.clip_grad_norm_(params, max_norm=5.0)
    assert_np_close(to_np(returned), math.sqrt(0.01 + 0.04 + 0.0025), 1e-12, 1e-12)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(to_np(p.grad), g)


def test_clip_grad_norm_inf_norm():
    grads = [np.array([0.5, -3.0]), np.array([2.0, 1.0, -1.0])]
    params = _params_with_grads(grads)
    returned = nn.utils.clip_grad_norm_(params, max_norm=1.5, norm_type=float("inf"))
    assert_np_close(to_np(returned), 3.0, 1e-12, 1e-12)
    for p, g in zip(params, grads):
        assert_np_close(to_np(p.grad), g * 1.5 / (3.0 + 1e-6), 1e-12, 1e-12)
    assert np.abs(to_np(params[0].grad)).max() <= 1.5


def test_clip_grad_norm_l1_single_tensor_and_missing_grads():
    g = np.array([1.0, -2.0, 3.0])
    (p,) = _params_with_grads([g])
    untouched = nn.Parameter(t64(np.zeros(2)))  # no grad: skipped
    returned = nn.utils.clip_grad_norm_([p, untouched], max_norm=3.0, norm_type=1)
    assert_np_close(to_np(returned), 6.0, 1e-12, 1e-12)
    assert_np_close(to_np(p.grad), g * 3.0 / (6.0 + 1e-6), 1e-12, 1e-12)
    assert untouched.grad is None
    (q,) = _params_with_grads([np.array([3.0, 4.0])])
    assert_np_close(to_np(nn.utils.clip_grad_norm_(q, 1.0)), 5.0, 1e-12, 1e-12)


def test_clip_grad_norm_on_a_model():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    model.double()
    (model(pyzen.randn(16, 4, dtype=F64)) * 100).sum().backward()
    grads = [to_np(p.grad).copy() for p in model.parameters()]
    total = math.sqrt(sum((g**2).sum() for g in grads))
    returned = nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    assert_np_close(to_np(returned), total, 1e-10, 1e-12)
    after = math.sqrt(sum((to_np(p.grad) ** 2).sum() for p in model.parameters()))
    assert after <= 0.5 and after > 0.5 - 1e-5


def test_clip_grad_norm_without_gradients_returns_zero():
    assert float(nn.utils.clip_grad_norm_([], 1.0)) == 0.0
    assert float(nn.utils.clip_grad_norm_([nn.Parameter(pyzen.ones(2))], 1.0)) == 0.0


def test_clip_grad_norm_float32_gradients():
    rng = np.random.default_rng(44)
    g = rng.standard_normal((10, 10)) * 3
    p = nn.Parameter(pyzen.zeros(10, 10))
    p.grad = pyzen.tensor(g.astype(np.float32))
    total = nn.utils.clip_grad_norm_([p], 2.0)
    assert total.dtype == pyzen.float32
    assert_np_close(to_np(total), np.sqrt((g.astype(np.float32).astype(np.float64) ** 2).sum()), 1e-6, 1e-6)
    assert p.grad.dtype == pyzen.float32
    assert abs(np.sqrt((to_np(p.grad).astype(np.float64) ** 2).sum()) - 2.0) < 1e-4


def test_clip_grad_norm_nonfinite():
    (p,) = _params_with_grads([np.array([np.inf, 1.0])])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


# ------------------------------------------------------------------ errors
def test_layer_norm_shape_errors():
    with pytest.raises(RuntimeError, match="layer_norm"):
        F.layer_norm(pyzen.randn(2, 5), (4,))
    with pytest.raises(RuntimeError, match="layer_norm"):
        F.layer_norm(pyzen.randn(2, 4), (4,), weight=pyzen.ones(3))
    with pytest.raises(RuntimeError, match="layer_norm"):
        F.layer_norm(pyzen.randn(2, 4), (4,), bias=pyzen.ones(5))
    with pytest.raises(RuntimeError, match="layer_norm"):
        nn.LayerNorm(6)(pyzen.randn(3, 4))


def test_linear_shape_error_names_the_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"(linear|matmul).*\(2, 3\)"):
        F.linear(pyzen.randn(2, 3), pyzen.randn(4, 5))
    with pytest.raises(RuntimeError, match="linear|matmul"):
        nn.Linear(5, 2)(pyzen.randn(3, 4))


@pytest.mark.parametrize("fn,name", [(F.mse_loss, "mse_loss"), (F.l1_loss, "l1_loss"), (F.binary_cross_entropy, "binary_cross_entropy"), (F.binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits")])
def test_elementwise_loss_shape_mismatch(fn, name):
    with pytest.raises(RuntimeError, match=name):
        fn(pyzen.rand(2, 3), pyzen.rand(3, 2))


LOSS_CALLS = {
    "mse_loss": lambda r: F.mse_loss(pyzen.rand(3), pyzen.rand(3), reduction=r),
    "l1_loss": lambda r: F.l1_loss(pyzen.rand(3), pyzen.rand(3), reduction=r),
    "binary_cross_entropy": lambda r: F.binary_cross_entropy(pyzen.rand(3), pyzen.rand(3), reduction=r),
    "binary_cross_entropy_with_logits": lambda r: F.binary_cross_entropy_with_logits(pyzen.rand(3), pyzen.rand(3), reduction=r),
    "cross_entropy": lambda r: F.cross_entropy(pyzen.randn(2, 3), idx([0, 1]), reduction=r),
    "nll_loss": lambda r: F.nll_loss(pyzen.randn(2, 3), idx([0, 1]), reduction=r),
}


@pytest.mark.parametrize("name", list(LOSS_CALLS))
def test_bad_reduction_string(name):
    with pytest.raises(ValueError, match=name):
        LOSS_CALLS[name]("average")


# ------------------------------------------------------------------ fused ops: every ISA, views, random shapes
@pytest.mark.parametrize("dtype", [pyzen.float32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("d", [1, 7, 64, 100])
@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_layer_norm_on_every_isa(isa, dtype, d, eps):
    rng = np.random.default_rng(d)
    x_np, w_np, b_np, g = rng.standard_normal((5, d)) * 2 + 1, rng.standard_normal(d), rng.standard_normal(d), rng.standard_normal((5, d))
    x, w, b = (pyzen.tensor(a, dtype=dtype, requires_grad=True) for a in (x_np, w_np, b_np))
    out = F.layer_norm(x, (d,), w, b, eps=eps)
    r, a = (1e-9, 1e-10) if dtype == F64 else (1e-4, 1e-4)
    assert_np_close(to_np(out), np_layer_norm(x_np, 1, w_np, b_np, eps=eps), r, a, "forward")
    out.backward(pyzen.tensor(g, dtype=dtype))
    mu = x_np.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(((x_np - mu) ** 2).mean(-1, keepdims=True) + eps)
    xhat = (x_np - mu) * rstd
    gy = g * w_np
    dx = rstd * (gy - gy.mean(-1, keepdims=True) - xhat * (gy * xhat).mean(-1, keepdims=True))
    assert_np_close(to_np(x.grad), dx, r * 10, a * 10, "dx")
    assert_np_close(to_np(w.grad), (g * xhat).sum(0), r * 10, a * 10, "dweight")
    assert_np_close(to_np(b.grad), g.sum(0), r, a, "dbias")


def test_layer_norm_float32_accuracy_on_every_isa(isa):
    """A large common offset: a one-pass E[x^2] - E[x]^2 variance in float32 would lose it all."""
    rng = np.random.default_rng(49)
    x = (rng.standard_normal((4, 256)) * 0.5 + 3000.0).astype(np.float32)
    out = to_np(F.layer_norm(pyzen.tensor(x), (256,)))
    assert_np_close(out, np_layer_norm(x.astype(np.float64), 1), 1e-2, 1e-2)


def np_sdpa_grads(q, k, v, g, bias, scale):
    """(dq, dk, dv) of softmax(q k^T * scale + bias) v for the cotangent g."""
    p = np_softmax(q @ np.swapaxes(k, -1, -2) * scale + bias, -1)
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True)) * scale
    return ds @ k, np.swapaxes(ds, -1, -2) @ q, np.swapaxes(p, -1, -2) @ g


@pytest.mark.parametrize("dtype", [pyzen.float32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("mask", ["none", "causal", "bool_keys", "float"])
@pytest.mark.parametrize("tq,tk", [(17, 17), (65, 65), (9, 33)])
def test_sdpa_on_every_isa(isa, dtype, mask, tq, tk):
    rng = np.random.default_rng(50)
    q_np, g = rng.standard_normal((2, 3, tq, 16)), rng.standard_normal((2, 3, tq, 16))
    k_np, v_np = rng.standard_normal((2, 3, tk, 16)), rng.standard_normal((2, 3, tk, 16))
    kw, bias = {}, np.zeros((tq, tk))
    if mask == "causal":
        kw["is_causal"] = True
        bias = np.where(np.tril(np.ones((tq, tk), dtype=bool)), 0.0, -np.inf)
    elif mask == "bool_keys":  # (B, 1, 1, Tk) key-padding style, True = attend
        keep = rng.random((2, 1, 1, tk)) < 0.7
        keep[..., 0] = True
        kw["attn_mask"] = pyzen.tensor(keep)
        bias = np.where(keep, 0.0, -np.inf)
    elif mask == "float":
        add = rng.standard_normal((tq, tk))
        kw["attn_mask"] = pyzen.tensor(add, dtype=dtype)
        bias = add
    q, k, v = (pyzen.tensor(a, dtype=dtype, requires_grad=True) for a in (q_np, k_np, v_np))
    out = F.scaled_dot_product_attention(q, k, v, **kw)
    r, a = (1e-9, 1e-10) if dtype == F64 else (1e-4, 1e-5)
    expected = np_softmax(q_np @ np.swapaxes(k_np, -1, -2) / 4.0 + bias, -1) @ v_np
    assert_np_close(to_np(out), expected, r, a, "out")
    out.backward(pyzen.tensor(g, dtype=dtype))
    dq, dk, dv = np_sdpa_grads(q_np, k_np, v_np, g, bias, 0.25)
    assert_np_close(to_np(q.grad), dq, r * 10, a * 10, "dq")
    assert_np_close(to_np(k.grad), dk, r * 10, a * 10, "dk")
    assert_np_close(to_np(v.grad), dv, r * 10, a * 10, "dv")


@pytest.mark.parametrize("dtype", [pyzen.float32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("c", [37, 1000])
def test_cross_entropy_on_every_isa(isa, dtype, c):
    rng = np.random.default_rng(51)
    x_np = rng.standard_normal((9, c)) * 3
    t = rng.integers(0, c, 9)
    t[4] = -100
    x = pyzen.tensor(x_np, dtype=dtype, requires_grad=True)
    out = F.cross_entropy(x, idx(t), label_smoothing=0.1)
    r, a = (1e-9, 1e-10) if dtype == F64 else (1e-5, 1e-5)
    assert_np_close(to_np(out), np_cross_entropy(x_np, t, label_smoothing=0.1), r, a)
    out.backward()
    target = 0.9 * np.eye(c)[np.where(t >= 0, t, 0)] + 0.1 / c
    assert_np_close(to_np(x.grad), (np_softmax(x_np) - target) * (t >= 0)[:, None] / 8, r, a)


@pytest.mark.parametrize("dtype", [pyzen.float32, F64], ids=["f32", "f64"])
def test_fused_ops_on_non_contiguous_views(isa, dtype):
    """Forward and backward of the fused ops on transposed and strided views."""
    rng = np.random.default_rng(52)
    r, a = (1e-9, 1e-10) if dtype == F64 else (1e-4, 1e-5)

    def leaf(arr):
        return pyzen.tensor(arr, dtype=dtype, requires_grad=True)

    # layer_norm over a transposed view
    base = rng.standard_normal((6, 4))
    x = leaf(base)
    out = F.layer_norm(x.transpose(0, 1), (6,))  # (4, 6), not contiguous
    assert_np_close(to_np(out), np_layer_norm(base.T, 1), r, a, "layer_norm")
    (out * out[:, :1]).sum().backward()
    assert x.grad is not None and tuple(x.grad.shape) == (6, 4)
    # attention on (B, T, H, D) -> (B, H, T, D) views, as MultiheadAttention builds them
    qb, kb, vb, g = (rng.standard_normal((2, 5, 3, 4)) for _ in range(4))
    leaves = [leaf(arr) for arr in (qb, kb, vb)]
    q, k, v = (t.transpose(1, 2) for t in leaves)
    qn, kn, vn = (arr.transpose(0, 2, 1, 3) for arr in (qb, kb, vb))
    out = F.scaled_dot_product_attention(q, k, v)
    assert_np_close(to_np(out), np_sdpa(qn, kn, vn), r, a, "sdpa")
    gn = g.transpose(0, 2, 1, 3)
    out.backward(pyzen.tensor(g, dtype=dtype).transpose(1, 2))
    p = np_softmax(qn @ np.swapaxes(kn, -1, -2) / 2.0)
    assert_np_close(to_np(leaves[2].grad), (np.swapaxes(p, -1, -2) @ gn).transpose(0, 2, 1, 3), r * 10, a * 10, "sdpa dv")
    # cross_entropy on a transposed (N, C) view and on a strided slice
    lb = rng.standard_normal((4, 6))
    t = np.array([1, 0, 3, 2, 3, 1])
    xl = leaf(lb)
    loss = F.cross_entropy(xl.transpose(0, 1), idx(t))
    assert_np_close(to_np(loss), np_cross_entropy(lb.T, t), r, a, "cross_entropy")
    loss.backward()
    assert_np_close(to_np(xl.grad), ((np_softmax(lb.T) - np.eye(4)[t]) / 6).T, r, a, "cross_entropy grad")
    sb = rng.standard_normal((6, 8))
    assert_np_close(to_np(F.cross_entropy(leaf(sb)[:, ::2], idx(t))), np_cross_entropy(sb[:, ::2], t), r, a, "cross_entropy strided")


_fast = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_fast
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), d=st.integers(1, 9), affine=st.booleans(), seed=st.integers(0, 2**16))
def test_layer_norm_random_shapes(lead, d, affine, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(lead) + (d,)) * 3
    w, b = (rng.standard_normal(d), rng.standard_normal(d)) if affine else (None, None)
    out = F.layer_norm(t64(x), (d,), None if w is None else t64(w), None if b is None else t64(b))
    assert_np_close(to_np(out), np_layer_norm(x, 1, w, b), 1e-9, 1e-9)


@_fast
@given(b=st.integers(1, 2), h=st.integers(1, 3), tq=st.integers(1, 6), tk=st.integers(1, 6), d=st.integers(1, 8),
       mask_kind=st.sampled_from(["none", "causal", "bool", "float"]), seed=st.integers(0, 2**16))
def test_sdpa_random_shapes(b, h, tq, tk, d, mask_kind, seed):
    rng = np.random.default_rng(seed)
    q, k, v = rng.standard_normal((b, h, tq, d)), rng.standard_normal((b, h, tk, d)), rng.standard_normal((b, h, tk, d))
    kw, ref_kw = {}, {}
    if mask_kind == "causal":
        kw["is_causal"] = ref_kw["is_causal"] = True
    elif mask_kind == "bool":
        m = rng.random((tq, tk)) < 0.5
        m[:, 0] = True  # keep one key per query (a fully masked row is nan)
        kw["attn_mask"], ref_kw["mask"] = pyzen.tensor(m), m
    elif mask_kind == "float":
        m = rng.standard_normal((tq, tk))
        kw["attn_mask"], ref_kw["mask"] = t64(m), m
    out = F.scaled_dot_product_attention(t64(q), t64(k), t64(v), **kw)
    assert_np_close(to_np(out), np_sdpa(q, k, v, **ref_kw), 1e-9, 1e-10)


@_fast
@given(n=st.integers(1, 6), c=st.integers(1, 7), smoothing=st.sampled_from([0.0, 0.1, 1.0]),
       reduction=st.sampled_from(["mean", "sum", "none"]), seed=st.integers(0, 2**16))
def test_cross_entropy_random_shapes(n, c, smoothing, reduction, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)) * 4
    t = rng.integers(0, c, n)
    t[rng.random(n) < 0.3] = -100
    out = F.cross_entropy(t64(x), idx(t), reduction=reduction, label_smoothing=smoothing)
    assert_np_close(to_np(out), np_cross_entropy(x, t, label_smoothing=smoothing, reduction=reduction), 1e-9, 1e-10)


def test_sdpa_dropout_is_unbiased():
    """E[dropout(P) V] = P V: average many independent copies of one small problem."""
    rng = np.random.default_rng(53)
    q, k, v = (rng.standard_normal((1, 3, 4)) for _ in range(3))
    n = 20_000
    rep = lambda a: t64(np.broadcast_to(a, (n,) + a.shape[1:]).copy())  # noqa: E731
    out = to_np(F.scaled_dot_product_attention(rep(q), rep(k), rep(v), dropout_p=0.3))
    mean = out.mean(0)
    ref = np_sdpa(q, k, v)[0]
    assert np.abs(mean - ref).max() < 0.05
    assert np.abs(out - ref).max() > 0.1  # individual draws do differ
