"""Numerical robustness: extreme and non-finite inputs, against NumPy float64 references written
carefully here (max-shifted exponentials, shifted two-pass statistics) or first principles.

* the softmax family and cross-entropy at logits of +-1e4, -inf (masked) and +inf/nan rows;
* layer norm at mean 1e4 with a tiny variance (a one-pass E[x^2] - E[x]^2 fails), constant rows;
* Adam/AdamW (the fused kernel) at zero, huge (overflowing), tiny and subnormal gradients;
* nan/inf propagation through elementwise ops, reductions, matmul and the fused kernels:
  nan in one row affects that row only, as in PyTorch.

Every warning is an error here (NumPy's RuntimeWarning above all): none may reach the user.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import pyzen
import pyzen.nn.functional as F
from pyzen.autograd.gradcheck import gradcheck
from conftest import assert_np_close, rng_for, to_np

INF, NAN = np.inf, np.nan
DTYPES = [np.float32, np.float64]
IDS = ["f32", "f64"]


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def leaf(a, dtype) -> pyzen.Tensor:
    return pyzen.tensor(np.asarray(a, dtype), requires_grad=True)


def tols(dtype) -> tuple[float, float]:
    return (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-13)


def assert_rel_close(actual, expected, rel: float, what: str = "") -> None:
    """max |actual - expected| <= rel * max |expected| (for outputs whose scale varies)."""
    actual, expected = to_np(actual).astype(np.float64), np.asarray(expected, np.float64)
    err, scale = np.abs(actual - expected).max(), np.abs(expected).max()
    assert err <= rel * scale, f"{what}: max error {err:.3g} > {rel:g} * {scale:.3g}"


# --------------------------------------------------------------------------- references
def ref_log_softmax(x):
    """(x - max) - log(sum e^(x - max)) over the last axis in float64: exact where x is near
    the max. Rows holding nan, +inf or only -inf give nan (inf - inf), as in PyTorch."""
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        s = x - x.max(-1, keepdims=True)
        return s - np.log(np.exp(s).sum(-1, keepdims=True))


def ref_logsumexp(x):
    """PyTorch's rule: an infinite max is replaced by 0, so +inf rows give +inf, -inf rows -inf."""
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(all="ignore"):
        return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]


def ref_cross_entropy(x, t, ls, ignore=-100):
    """Per-row losses and d(sum of losses)/dx: loss = -(1 - ls) logp[t] - ls mean(logp),
    gradient softmax - (1 - ls) onehot - ls / C; rows with t == ignore: 0."""
    logp = ref_log_softmax(x)
    n, c = logp.shape
    keep = t != ignore
    safe = np.where(keep, t, 0)
    onehot = np.zeros((n, c))
    onehot[np.arange(n), safe] = 1.0
    with np.errstate(all="ignore"):
        loss = -(1 - ls) * logp[np.arange(n), safe]
        if ls:
            loss = loss - ls * logp.mean(-1)
        grad = np.exp(logp) - (1 - ls) * onehot - ls / c
    return np.where(keep, loss, 0.0), np.where(keep[:, None], grad, 0.0)


def ref_layer_norm(x, eps):
    """(xhat, rstd) in float64 by shifted two-pass statistics: d = x - x[0] is exact for
    nearly constant rows, so the deviations keep every bit of the input."""
    x = np.asarray(x, np.float64)
    d = x - x[..., :1]
    c = d - d.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt((c * c).mean(-1, keepdims=True) + eps)
    return c * rstd, rstd


def ref_layer_norm_grads(x, g, w, eps):
    """(dx, dweight, dbias) of sum(g * (xhat * w + b)) in float64."""
    xhat, rstd = ref_layer_norm(x, eps)
    g = np.asarray(g, np.float64)
    gw = g * np.asarray(w, np.float64)
    n = xhat.shape[-1]
    dx = rstd / n * (n * gw - gw.sum(-1, keepdims=True) - xhat * (gw * xhat).sum(-1, keepdims=True))
    return dx, (g * xhat).sum(0), g.sum(0)


# --------------------------------------------------------------------------- softmax family
def extreme_logits(rng, dtype):
    """Rows of +-1e4 mixtures, a constant row at 1e4, -inf (masked) entries, and wide rows
    near 1e4 (the vector paths of the native kernels)."""
    narrow = np.array([
        [1e4, -1e4, 0, 1, -1],
        [1e4, 1e4, 1e4, 1e4, 1e4],
        [-1e4, -1e4, -1e4, -1e4, -1e4],
        [1e4, 1e4 - 1, 1e4 - 2, -1e4, 0],
        [-1e4, 0, 1e4, 0, 1],
        [-INF, 0, 1, -INF, 2],
        [-INF, -INF, 1e4, -INF, -INF],
    ])
    wide = 1e4 + 3 * rng.standard_normal((3, 100))
    wide[1] = rng.choice([-1e4, 0.0, 1e4], 100) + rng.standard_normal(100)
    wide[2, ::3] = -INF
    return narrow.astype(dtype), wide.astype(dtype)


def check_softmax(name, x, dtype):
    """softmax or log_softmax over the last axis, forward and backward (with a random cotangent)
    against the float64 formulas, nan where the reference is nan."""
    rtol, atol = tols(dtype)
    g = rng_for("softmax-g", x.shape).standard_normal(x.shape)
    logp = ref_log_softmax(x)
    p = np.exp(logp)
    if name == "softmax":
        fn, want, want_grad = pyzen.softmax, p, p * (g - (g * p).sum(-1, keepdims=True))
    else:
        fn, want, want_grad = pyzen.log_softmax, logp, g - p * g.sum(-1, keepdims=True)
    t = leaf(x, dtype)
    out = fn(t, -1)
    assert_np_close(to_np(out), want, rtol, atol, f"{name} forward")
    (out * pyzen.tensor(g.astype(dtype))).sum().backward()
    assert_np_close(to_np(t.grad), want_grad, rtol, atol, f"{name} backward")
    assert (np.isfinite(to_np(t.grad)) == np.isfinite(want_grad)).all(), f"{name}: non-finite gradient"


def check_logsumexp(x, dtype):
    rtol, atol = tols(dtype)
    t = leaf(x, dtype)
    lse = pyzen.logsumexp(t, -1)
    want = ref_logsumexp(x)
    assert_np_close(to_np(lse), want, rtol, 0, "logsumexp forward")
    g = rng_for("lse-g", x.shape).standard_normal(x.shape[0])
    (lse * pyzen.tensor(g.astype(dtype))).sum().backward()
    with np.errstate(all="ignore"):  # PyTorch's formula g e^(x - lse): nan at a +inf entry
        want_grad = g[:, None] * np.exp(x.astype(np.float64) - want[:, None])
    assert_np_close(to_np(t.grad), want_grad, rtol, atol, "logsumexp backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_softmax_and_logsumexp_extreme_logits(dtype):
    for x in extreme_logits(rng_for("sm-extreme", dtype), dtype):
        check_softmax("softmax", x, dtype)
        check_logsumexp(x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_log_softmax_extreme_logits(dtype):
    for x in extreme_logits(rng_for("sm-extreme", dtype), dtype):
        check_softmax("log_softmax", x, dtype)


def special_rows(dtype):
    """One ordinary row, then rows whose every probability is undefined: only -inf, a nan
    entry, a +inf entry, two +inf entries, +inf beside -inf."""
    return np.array([
        [0.5, -1, 2, 0, 1],
        [-INF, -INF, -INF, -INF, -INF],
        [NAN, 0, 1, 2, 3],
        [INF, 0, 1, 2, 3],
        [INF, INF, 0, 1, 2],
        [-INF, INF, 0, 1, 2],
    ], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_softmax_family_non_finite_rows(dtype):
    """PyTorch: softmax and log_softmax of an all -inf row or a row holding nan are nan (0/0);
    logsumexp is -inf for an all -inf row and +inf for a row holding +inf. The ordinary row
    is unaffected."""
    x = special_rows(dtype)
    np.testing.assert_array_equal(ref_logsumexp(x)[1:], [-INF, NAN, INF, INF, INF])
    for name in ("softmax", "log_softmax"):
        check_softmax(name, x[:3], dtype)
    check_logsumexp(x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_rows_holding_pos_inf_are_nan(dtype, name):
    check_softmax(name, special_rows(dtype)[[0, 3, 4, 5]], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cross_entropy_extreme_logits(isa, dtype, ls):
    """Losses exact where the math allows (0 for a lone live logit, 2e4 for a target at -1e4),
    gradients finite and equal to softmax - onehot. With label smoothing a row with -inf logits
    has an infinite loss (the smoothing puts mass on classes of probability 0) but a finite
    gradient, as in PyTorch."""
    rtol, atol = tols(dtype)
    narrow, wide = extreme_logits(rng_for("ce-extreme", dtype), dtype)
    for x, t in ((narrow, [-100, 2, 1, 3, 4, 2, 2]), (wide, [-100, 17, 40])):
        t = np.array(t)
        want_loss, want_grad = ref_cross_entropy(x, t, ls)
        xt = leaf(x, dtype)
        losses = to_np(F.cross_entropy(xt, pyzen.tensor(t), reduction="none", label_smoothing=ls))
        assert_np_close(losses, want_loss, rtol, atol, f"losses C={x.shape[1]}")
        F.cross_entropy(xt, pyzen.tensor(t), label_smoothing=ls).backward()
        grad = to_np(xt.grad)
        assert np.isfinite(grad).all(), f"non-finite gradient C={x.shape[1]}"
        assert_np_close(grad, want_grad / (t != -100).sum(), rtol, atol, f"mean-reduced gradient C={x.shape[1]}")
    losses = to_np(F.cross_entropy(pyzen.tensor(narrow), pyzen.tensor(np.array([1, 2, 1, 3, 4, 2, 2])), reduction="none"))
    assert losses[6] == 0 and losses[0] == 2e4


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_cross_entropy_non_finite_rows(isa, dtype):
    """Rows of special_rows: loss and gradient nan (PyTorch's log_softmax is nan there); a
    target logit at -inf among finite ones: loss +inf, gradient softmax - onehot (finite)."""
    rtol, atol = tols(dtype)
    x = np.concatenate([special_rows(dtype), np.array([[-INF, 0, 1, 2, 3]], dtype)])
    t = np.array([2, 0, 1, 0, 3, 2, 0])
    want_loss, want_grad = ref_cross_entropy(x, t, 0.0)
    assert np.isnan(want_loss[1:6]).all() and want_loss[6] == INF and np.isfinite(want_grad[6]).all()
    xt = leaf(x, dtype)
    losses = F.cross_entropy(xt, pyzen.tensor(t), reduction="none")
    assert_np_close(to_np(losses), want_loss, rtol, atol, "losses")
    losses.sum().backward()
    assert_np_close(to_np(xt.grad), want_grad, rtol, atol, "gradient")
    for ls in (0.1, 1.0):  # label smoothing over nan rows stays nan
        out = to_np(F.cross_entropy(pyzen.tensor(x), pyzen.tensor(t), reduction="none", label_smoothing=ls))
        assert np.isnan(out[1:6]).all() and np.isfinite(out[0]), f"ls={ls}"


# --------------------------------------------------------------------------- layer norm
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("cols", [37, 256])
@pytest.mark.parametrize("eps", [1e-5, 1e-12])
def test_layer_norm_large_mean_tiny_variance(isa, dtype, cols, eps):
    """Mean 1e4, std 1e-3: E[x^2] - E[x]^2 cancels 14 of float64's 16 digits there, so only
    shifted two-pass (or Welford) statistics meet these tolerances, forward and backward."""
    rng = rng_for("ln-offset", isa, dtype, cols, eps)
    x = (1e4 + 1e-3 * rng.standard_normal((5, cols))).astype(dtype)
    w = (1 + 0.1 * rng.standard_normal(cols)).astype(dtype)
    b = rng.standard_normal(cols).astype(dtype)
    g = rng.standard_normal((5, cols)).astype(dtype)
    rel = 1e-5 if dtype == np.float32 else 1e-12
    xhat, _ = ref_layer_norm(x, eps)

    module = pyzen.nn.LayerNorm(cols, eps=eps, elementwise_affine=False)
    assert_rel_close(module(pyzen.tensor(x)), xhat, rel, "nn.LayerNorm")

    xt, wt, bt = leaf(x, dtype), leaf(w, dtype), leaf(b, dtype)
    out = F.layer_norm(xt, cols, wt, bt, eps)
    assert_rel_close(out, xhat * w.astype(np.float64) + b, rel, "layer_norm forward")
    (out * pyzen.tensor(g)).sum().backward()
    dx, dw, db = ref_layer_norm_grads(x, g, w, eps)
    for name, got, want in (("dx", xt.grad, dx), ("dweight", wt.grad, dw), ("dbias", bt.grad, db)):
        assert_rel_close(got, want, 10 * rel, f"layer_norm {name}")


def test_layer_norm_gradcheck_at_large_mean():
    rng = rng_for("ln-gradcheck")
    x = leaf(1e4 + 1e-3 * rng.standard_normal((3, 6)), np.float64)
    w = leaf(1 + 0.1 * rng.standard_normal(6), np.float64)
    b = leaf(rng.standard_normal(6), np.float64)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, 6, w, b, 1e-5), (x, w, b))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_layer_norm_constant_rows_and_nan_row(isa, dtype):
    """Variance 0: the output is the bias exactly and the gradients are those of the float64
    formula (rstd = 1/sqrt(eps), finite). A nan in one row makes that row's output and input
    gradient nan and no other; dweight sums over rows so it is nan too, dbias does not see x."""
    rtol, atol = tols(dtype)
    rng = rng_for("ln-constant", isa, dtype)
    cols = 19
    x = np.array([np.full(cols, v) for v in (0.0, -3.5, 1e4, 1e30)], dtype)
    w = (1 + 0.1 * rng.standard_normal(cols)).astype(dtype)
    b = rng.standard_normal(cols).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    xt, wt, bt = leaf(x, dtype), leaf(w, dtype), leaf(b, dtype)
    out = F.layer_norm(xt, cols, wt, bt)
    np.testing.assert_array_equal(to_np(out), np.broadcast_to(b, x.shape))
    (out * pyzen.tensor(g)).sum().backward()
    dx, dw, db = ref_layer_norm_grads(x, g, w, 1e-5)
    for name, got, want in (("dx", xt.grad, dx), ("dweight", wt.grad, dw), ("dbias", bt.grad, db)):
        assert_np_close(to_np(got), want, rtol, atol * 1e3, name)  # dx scales with rstd ~ 316

    x = rng.standard_normal((4, cols)).astype(dtype)
    x[2, 5] = NAN
    xt, wt, bt = leaf(x, dtype), leaf(w, dtype), leaf(b, dtype)
    out = F.layer_norm(xt, cols, wt, bt)
    (out * pyzen.tensor(g)).sum().backward()
    rows_nan = np.isnan(to_np(out)).any(-1)
    np.testing.assert_array_equal(rows_nan, [False, False, True, False])
    assert np.isnan(to_np(out)[2]).all() and np.isnan(to_np(xt.grad)[2]).all()
    keep = [0, 1, 3]
    xhat, _ = ref_layer_norm(x[keep], 1e-5)
    assert_np_close(to_np(out)[keep], xhat * w.astype(np.float64) + b, rtol * 10, atol * 10, "other rows")
    dx, _, db = ref_layer_norm_grads(x[keep], g[keep], w, 1e-5)
    assert_np_close(to_np(xt.grad)[keep], dx, rtol * 10, atol * 10, "other rows' dx")
    assert np.isnan(to_np(wt.grad)).all()
    assert_np_close(to_np(bt.grad), g.astype(np.float64).sum(0), rtol, atol, "dbias")


# --------------------------------------------------------------------------- Adam / AdamW
def ref_adam(p, grads, *, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    """PyTorch's Adam/AdamW update, step by step in float64. Returns (p, exp_avg, exp_avg_sq)."""
    b1, b2 = betas
    p = np.asarray(p, np.float64).copy()
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for step, g in enumerate(grads, 1):
        g = -np.asarray(g, np.float64) if maximize else np.asarray(g, np.float64)
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        with np.errstate(over="ignore"):  # g^2 may overflow to inf, as in the kernel
            v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax if amsgrad else v) / math.sqrt(1 - b2**step) + eps
        p = p - lr / (1 - b1**step) * m / denom
    return p, m, v


OPT_FLAGS = [{}, {"amsgrad": True}, {"maximize": True}, {"weight_decay": 0.1}]
OPT_IDS = ["plain", "amsgrad", "maximize", "wd"]


def run_optimizer(cls, p0, grads, dtype, flags):
    p = pyzen.nn.Parameter(pyzen.tensor(np.asarray(p0, dtype)))
    opt = cls([p], lr=1e-3, **flags)
    for g in grads:
        p.grad = pyzen.tensor(np.asarray(g, dtype))
        opt.step()
    state = opt.state[p]
    return to_np(p), to_np(state["exp_avg"]), to_np(state["exp_avg_sq"])


def ref_for(cls, p0, grads, dtype, flags):
    kw = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)
    kw["weight_decay"] = 0.0 if cls is pyzen.optim.Adam else 1e-2
    kw.update(flags)
    return ref_adam(np.asarray(p0, dtype), [np.asarray(g, dtype) for g in grads], decoupled=cls is pyzen.optim.AdamW, **kw)


@pytest.mark.parametrize("cls", [pyzen.optim.Adam, pyzen.optim.AdamW], ids=["Adam", "AdamW"])
@pytest.mark.parametrize("flags", OPT_FLAGS, ids=OPT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_adam_zero_tiny_subnormal_gradients(isa, cls, flags, dtype):
    """Gradients of 0, ~1, 1e-30 and subnormal (1e-40 in float32, 1e-310 in float64) against the
    float64 formula: no 0/0 where m = v = 0, and zero gradients move nothing but weight decay.
    In float32, g^2 of 1e-30 underflows to 0 (the update is then m / eps, as the formula in
    float32 gives); values below float32's smallest normal are compared absolutely."""
    rng = rng_for("adam-small", isa, cls.__name__, str(flags), dtype)
    sub = 1e-40 if dtype == np.float32 else 1e-310
    mags = np.repeat([0.0, 1.0, 1e-30, sub], 4)
    p0 = np.where(np.arange(mags.size) % 2, rng.standard_normal(mags.size), 0.0)
    grads = [mags * rng.choice([-1.0, 1.0], mags.size) * rng.uniform(0.5, 2, mags.size) for _ in range(3)]
    p, m, v = run_optimizer(cls, p0, grads, dtype, flags)
    want_p, want_m, want_v = ref_for(cls, p0, grads, dtype, flags)
    # A subnormal gradient keeps few digits (1e-40 is 7e4 float32 spacings), and PyTorch's order
    # p -= (lr / bc1 * m) / denom makes lr / bc1 * m ~ 1e-43 subnormal too: 1.4% per rounding.
    small = mags == sub
    rtol = (1e-5, 5e-2) if dtype == np.float32 else (1e-12, 1e-8)
    for name, got, want in (("param", p, want_p), ("exp_avg", m, want_m), ("exp_avg_sq", v, want_v)):
        assert np.isfinite(got).all(), name
        for part, r in ((~small, rtol[0]), (small, rtol[1])):
            assert_np_close(got[part], want[part], r, np.finfo(dtype).tiny, name)
    zero = mags == 0
    if not flags.get("weight_decay") and cls is pyzen.optim.Adam:
        np.testing.assert_array_equal(p[zero], np.asarray(p0, dtype)[zero])  # not moved at all


@pytest.mark.parametrize("cls", [pyzen.optim.Adam, pyzen.optim.AdamW], ids=["Adam", "AdamW"])
@pytest.mark.parametrize("flags", OPT_FLAGS, ids=OPT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_adam_huge_gradients(isa, cls, flags, dtype):
    """g^2 overflows (1e30 in float32, 1e200 in float64): exp_avg_sq = inf, so the update
    m / (sqrt(inf) + eps) is 0 and only weight decay moves the parameter -- what PyTorch's
    formula gives evaluated in the parameter's dtype. Where g^2 fits (1e30 in float64), the
    float64 reference applies."""
    huge = 1e30 if dtype == np.float32 else 1e200
    p0 = np.array([0.5, -2.0, 0.0, 3.0], dtype)
    grads = [np.array([huge, -huge, huge, -huge])] * 3
    p, m, v = run_optimizer(cls, p0, grads, dtype, flags)
    assert (v == INF).all() and np.isfinite(m).all()
    want_m = ref_for(cls, p0, grads, dtype, flags)[1]
    assert_np_close(m, want_m, 1e-6, 0, "exp_avg")
    want_p = p0.copy()
    if cls is pyzen.optim.AdamW:
        decay = dtype(1 - 1e-3 * flags.get("weight_decay", 1e-2))
        for _ in grads:
            want_p = want_p * decay
    np.testing.assert_array_equal(p, want_p)
    if dtype == np.float64:
        grads = [np.array([1e30, -1e30, 1e30, -1e30])] * 3
        p, m, v = run_optimizer(cls, p0, grads, dtype, flags)
        for name, got, want in zip(("param", "exp_avg", "exp_avg_sq"), (p, m, v), ref_for(cls, p0, grads, dtype, flags)):
            assert_np_close(got, want, 1e-12, 0, name)


# --------------------------------------------------------------------------- nan and inf propagation
SPECIAL = np.array([NAN, INF, -INF, 0.0, -0.5, 0.5, 2.0, 1e4, -1e4])
ORDINARY = np.isin(SPECIAL, [0.5, 2.0])  # where every op below has a finite derivative


def _gelu_ref(x):
    return np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) if not math.isnan(v) else NAN for v in x])


def _gelu_tanh_ref(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _sigmoid_ref(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


ELEMENTWISE = {
    "add": (lambda t: t + 1.0, lambda x: x + 1),
    "mul_zero": (lambda t: t * 0.0, lambda x: x * 0),
    "div_zero": (lambda t: t / 0.0, lambda x: x / 0.0),
    "exp": (pyzen.exp, np.exp),
    "log": (pyzen.log, np.log),
    "sqrt": (pyzen.sqrt, np.sqrt),
    "sin": (pyzen.sin, np.sin),
    "cos": (pyzen.cos, np.cos),
    "tanh": (pyzen.tanh, np.tanh),
    "sigmoid": (pyzen.sigmoid, _sigmoid_ref),
    "relu": (pyzen.relu, lambda x: np.where(np.isnan(x), x, np.maximum(x, 0))),
    "silu": (pyzen.silu, lambda x: x * _sigmoid_ref(x)),
    "gelu": (F.gelu, _gelu_ref),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), _gelu_tanh_ref),
    "clamp": (lambda t: pyzen.clamp(t, -1.0, 1.0), lambda x: np.clip(x, -1, 1)),
    "maximum": (lambda t: pyzen.maximum(t, pyzen.zeros(t.shape, dtype=t.dtype)), lambda x: np.maximum(x, 0)),
    "minimum": (lambda t: pyzen.minimum(t, pyzen.zeros(t.shape, dtype=t.dtype)), lambda x: np.minimum(x, 0)),
    "pow": (lambda t: t**2, lambda x: x**2),
    "abs": (pyzen.abs, np.abs),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_nan_inf(isa, dtype, name):
    """IEEE results as NumPy gives them in float64 (nan propagates through maximum, minimum,
    clamp and relu, as in torch); backward runs silently and a nan or inf input leaves the
    other elements' gradients finite."""
    fn, ref = ELEMENTWISE[name]
    x = SPECIAL.astype(dtype)
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64))
    rtol, atol = (2e-6, 1e-6) if dtype == np.float32 else (1e-12, 1e-13)
    t = leaf(x, dtype)
    out = fn(t)
    assert_np_close(to_np(out), want, rtol, atol, name)
    out.sum().backward()
    if name != "div_zero":  # d(x / 0)/dx = inf everywhere
        assert np.isfinite(to_np(t.grad)[ORDINARY]).all(), name


def test_gelu_float32_tails(isa):
    """The float32 kernel's exp flushes below e^-87 to 0: x * Phi(x) is -0 (not -x e^-87, which is
    -5 at x = -3e38) far left, and the slope is 1 / 0 far out on either side."""
    x = np.array([-3e38, -1e20, -100.0, 100.0, 1e20, 3e38], np.float32)
    for approximate in ("none", "tanh"):
        t = leaf(x, np.float32)
        out = F.gelu(t, approximate=approximate)
        np.testing.assert_array_equal(to_np(out), np.where(x < 0, 0.0, x).astype(np.float32))
        out.sum().backward()
        slope = to_np(t.grad)
        far = slice(None) if approximate == "none" else [2, 3]  # tanh form: x^2 overflows past 1.8e19
        np.testing.assert_array_equal(slope[far], (x > 0).astype(np.float32)[far])


REDUCTION_INPUT = np.array([
    [1.0, NAN, -2.0, 0.5],
    [INF, -INF, 0.0, 2.0],
    [1.0, 2.0, 3.0, 4.0],
    [INF, 1.0, 2.0, 3.0],
])

REDUCTIONS = {
    "sum": (lambda t: t.sum(-1), lambda x: x.sum(-1)),
    "mean": (lambda t: t.mean(-1), lambda x: x.mean(-1)),
    "prod": (lambda t: t.prod(-1), lambda x: x.prod(-1)),
    "var": (lambda t: t.var(-1), lambda x: x.var(-1, ddof=1)),
    "std": (lambda t: t.std(-1), lambda x: x.std(-1, ddof=1)),
    "cumsum": (lambda t: t.cumsum(-1), lambda x: x.cumsum(-1)),
    "max_dim": (lambda t: t.max(-1).values, lambda x: x.max(-1)),
    "min_dim": (lambda t: t.min(-1).values, lambda x: x.min(-1)),
    "max": (lambda t: t.max(), lambda x: x.max()),
    "min": (lambda t: t.min(), lambda x: x.min()),
    "logsumexp": (lambda t: pyzen.logsumexp(t, -1), ref_logsumexp),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_nan_inf(dtype, name):
    """nan in a row makes that row's result nan (max and min propagate nan, like torch);
    inf - inf inside var, prod and sum is nan; the finite row is exact."""
    fn, ref = REDUCTIONS[name]
    x = REDUCTION_INPUT.astype(dtype)
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64))
    t = leaf(x, dtype)
    out = fn(t)
    assert_np_close(to_np(out), want, *tols(dtype), name)
    out.sum().backward()
    if name not in ("max", "min"):  # a full max or min sends all the gradient to its nan
        assert np.isfinite(to_np(t.grad)[2]).all(), f"{name}: the finite row's gradient"


def test_argmax_argmin_and_max_gradient_pick_the_nan():
    """torch: argmax/argmin (and max/min(dim).indices) return the index of a nan; the gradient of
    a full max()/min() that is nan goes to the nan entries, shared evenly."""
    x = REDUCTION_INPUT
    np.testing.assert_array_equal(to_np(pyzen.argmax(pyzen.tensor(x), -1)), [1, 0, 3, 0])
    np.testing.assert_array_equal(to_np(pyzen.argmin(pyzen.tensor(x), -1)), [1, 1, 0, 1])
    assert int(pyzen.argmax(pyzen.tensor(x))) == 1 and int(pyzen.argmin(pyzen.tensor(x))) == 1
    np.testing.assert_array_equal(to_np(pyzen.tensor(x).max(-1).indices), [1, 0, 3, 0])
    for largest in (True, False):
        y = x.copy()
        y[3, 2] = NAN
        t = leaf(y, np.float64)
        (t.max() if largest else t.min()).backward()
        want = np.zeros_like(y)
        want[0, 1] = want[3, 2] = 0.5
        np.testing.assert_array_equal(to_np(t.grad), want)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("mkn", [(1, 1, 1), (5, 7, 3), (33, 65, 17), (64, 128, 48)], ids=str)
def test_matmul_nan_inf(isa, dtype, mkn):
    """nan and inf reach exactly the outputs the math sends them to, including 0 * inf = nan from
    a zero row of A against an inf in B (a kernel that skips zeros or blocks would give 0)."""
    m, k, n = mkn
    rng = rng_for("mm-nan", isa, dtype, mkn)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    a[m // 2, k // 3] = NAN
    a[m - 1] = 0.0
    b[k - 1, n - 1] = INF
    a[0, k - 1] = -INF if m > 1 else a[0, k - 1]
    b[:, 0] = 0.0 if n > 1 else b[:, 0]
    a, b = a.astype(dtype), b.astype(dtype)
    with np.errstate(all="ignore"):  # elementwise products then sums: IEEE, no BLAS shortcuts
        want = (a.astype(np.float64)[:, :, None] * b.astype(np.float64)[None]).sum(1)
    got = to_np(pyzen.tensor(a) @ pyzen.tensor(b))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) & (got > 0), np.isinf(want) & (want > 0))
    rtol, atol = (1e-5, 1e-4) if dtype == np.float32 else (1e-12, 1e-12)
    assert_np_close(got, want, rtol, atol, f"matmul {mkn}")


def ref_attention(q, k, v, g, causal):
    """Output and (dq, dk, dv) of softmax(q k^T / sqrt(D)) v for one batch item, float64."""
    q, k, v, g = (np.asarray(a, np.float64) for a in (q, k, v, g))
    scale = 1 / math.sqrt(q.shape[-1])
    s = q @ k.T * scale
    if causal:
        s = np.where(np.tril(np.ones(s.shape, bool)), s, -INF)
    p = np.exp(ref_log_softmax(s))
    dp = g @ v.T
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    return p @ v, (ds @ k * scale, ds.T @ q * scale, p.T @ g)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("tlen", [5, 40])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_attention_nan_in_one_query_row(isa, dtype, tlen, causal):
    """nan in query 1 of item 0: only output row 1 of item 0 is nan, and only dq's row 1. Every key
    that query attends to gets a nan dk and dv (all keys; with causal, keys 0 and 1 at least:
    which masked keys a flash kernel's tiles also touch is implementation-defined, as in torch).
    Item 1 matches the float64 reference."""
    rng = rng_for("attn-nan", isa, dtype, tlen, causal)
    q, k, v, g = (rng.standard_normal((2, tlen, 8)).astype(dtype) for _ in range(4))
    q[0, 1, 3] = NAN
    tq, tk, tv = leaf(q, dtype), leaf(k, dtype), leaf(v, dtype)
    out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    (out * pyzen.tensor(g)).sum().backward()
    out = to_np(out)
    nan_rows = np.argwhere(np.isnan(out).any(-1)).tolist()
    assert nan_rows == [[0, 1]] and np.isnan(out[0, 1]).all()
    assert np.argwhere(np.isnan(to_np(tq.grad)).any(-1)).tolist() == [[0, 1]]
    attended = slice(0, 2) if causal else slice(None)
    for d in (tk.grad, tv.grad):
        assert np.isnan(to_np(d)[0, attended]).all()
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
    want_out, want_grads = ref_attention(q[1], k[1], v[1], g[1], causal)
    assert_np_close(out[1], want_out, rtol, atol, "item 1 output")
    for name, got, want in zip(("dq", "dk", "dv"), (tq.grad, tk.grad, tv.grad), want_grads):
        assert_np_close(to_np(got)[1], want, rtol, atol, f"item 1 {name}")
    q0 = q[0].copy()
    q0[1] = 0  # the other rows of item 0 do not depend on query 1
    others = np.arange(tlen) != 1
    assert_np_close(out[0, others], ref_attention(q0, k[0], v[0], g[0], causal)[0][others], rtol, atol, "item 0, other rows")
