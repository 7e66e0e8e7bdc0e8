"""scaled_dot_product_attention: the flash-style native kernels (pyzen._C.attention_forward
/ attention_backward, through the CPU backend and the autograd Function) against a plain
NumPy float64 softmax(q k^T * scale + mask) v reference, on every ISA the CPU supports."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pyzen
import pyzen._C as C
from pyzen.autograd import gradcheck
from pyzen.backend import cpu
from pyzen.ops.fused import scaled_dot_product_attention as sdpa
from conftest import assert_np_close, rng_for, to_np

DTYPES = [np.float32, np.float64]


# ---- NumPy float64 reference ---------------------------------------------------------------
def _mm(a, b):
    """Batched a @ b without BLAS threads (whose wake-ups dominate these small products on a
    busy machine)."""
    return np.einsum("...ij,...jk->...ik", a, b)


def _scores(q, k, mask, causal, scale):
    s = _mm(np.asarray(q, np.float64), np.swapaxes(np.asarray(k, np.float64), -1, -2)) * scale
    tq, tk = s.shape[-2:]
    if causal:
        s = np.where(np.tril(np.ones((tq, tk), bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + np.asarray(mask, np.float64)
    return s


def ref_forward(q, k, v, mask=None, causal=False, scale=None):
    """(out, lse, p) in float64; fully masked rows: out NaN, lse -inf, p 0."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = _scores(q, k, mask, causal, scale)
    m = s.max(axis=-1, keepdims=True) if s.shape[-1] else np.full(s.shape[:-1] + (1,), -np.inf)
    dead = np.isneginf(m)
    e = np.exp(s - np.where(dead, 0.0, m))
    l = e.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(dead, 0.0, e / np.where(dead, 1.0, l))
        lse = np.where(dead, -np.inf, m + np.log(np.where(dead, 1.0, l)))[..., 0]
    out = _mm(p, np.asarray(v, np.float64))
    out = np.where(dead & (s.shape[-1] > 0), np.nan, out)
    return out, lse, p


def ref_grads(g, q, k, v, mask=None, causal=False, scale=None):
    """(dq, dk, dv) of sum(g * out), in float64; fully masked rows contribute nothing."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    out, _, p = ref_forward(q, k, v, mask, causal, scale)
    g, q, k, v = (np.asarray(x, np.float64) for x in (g, q, k, v))
    dv = _mm(np.swapaxes(p, -1, -2), g)
    dp = _mm(g, np.swapaxes(v, -1, -2))
    delta = np.nan_to_num(np.sum(g * out, axis=-1, keepdims=True))
    ds = p * (dp - delta) * scale
    return _mm(ds, k), _mm(np.swapaxes(ds, -1, -2), q), dv


def _tol(dtype):
    return (1e-4, 2e-5) if dtype == np.float32 else (1e-10, 1e-12)


def _rand(rng, shape, dtype, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(dtype)


def _check(q, k, v, mask=None, causal=False, scale=None, what=""):
    """Forward and backward through the CPU backend (native kernels) against the reference."""
    dtype = q.dtype.type
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    rtol, atol = _tol(dtype)
    out, lse = cpu.attention_forward(q, k, v, mask, causal, scale)
    r_out, r_lse, _ = ref_forward(q, k, v, mask, causal, scale)
    assert out.dtype == dtype and lse.dtype == dtype
    assert_np_close(out, r_out, rtol, atol, f"{what} out")
    assert_np_close(lse, r_lse, rtol, atol, f"{what} lse")
    g = _rand(rng_for(what, "g"), out.shape, dtype)
    dq, dk, dv = cpu.attention_backward(g, q, k, v, out, lse, mask, causal, scale)
    for name, got, want in zip(("dq", "dk", "dv"), (dq, dk, dv), ref_grads(g, q, k, v, mask, causal, scale)):
        assert got.dtype == dtype
        assert_np_close(got, want, rtol, atol * 5, f"{what} {name}")


# ---- forward and backward values on every ISA ------------------------------------------------
#        lead,   Tq,  Tk,   D,  Dv
SHAPES = [
    ((2,), 1, 1, 1, 1),
    ((2, 3), 3, 17, 17, 17),
    ((1,), 17, 100, 63, 63),
    ((3,), 129, 65, 65, 65),
    ((2,), 64, 64, 64, 64),
    ((1,), 100, 129, 256, 256),
    ((2,), 65, 63, 64, 32),
    ((), 70, 3, 8, 5),
]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[0] + s[1:])))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_values(isa, dtype, shape, causal):
    lead, tq, tk, d, dv = shape
    rng = rng_for("values", shape, causal, dtype)
    q, k, v = _rand(rng, lead + (tq, d), dtype), _rand(rng, lead + (tk, d), dtype), _rand(rng, lead + (tk, dv), dtype)
    _check(q, k, v, causal=causal, what=f"{isa} {shape} causal={causal}")


MASKS = {
    "bool_TqTk": lambda rng, b, tq, tk: rng.random((tq, tk)) < 0.7,
    "bool_B11Tk": lambda rng, b, tq, tk: rng.random((b, 1, 1, tk)) < 0.6,
    "additive_TqTk": lambda rng, b, tq, tk: rng.normal(0, 2, (tq, tk)),
    "additive_B11Tk": lambda rng, b, tq, tk: np.where(rng.random((b, 1, 1, tk)) < 0.3, -np.inf, rng.normal(0, 1, (b, 1, 1, tk))),
}


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("kind", list(MASKS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_masks(isa, dtype, kind, causal):
    b, h, tq, tk, d = 2, 3, 70, 67, 16
    rng = rng_for("masks", kind, dtype, causal)
    mask = MASKS[kind](rng, b, tq, tk)
    if mask.dtype != np.bool_:
        mask = mask.astype(dtype)
    q, k, v = (_rand(rng, (b, h, t, d), dtype) for t in (tq, tk, tk))
    _check(q, k, v, mask=mask, causal=causal, what=f"{isa} {kind} causal={causal}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_fully_masked_rows(isa, dtype):
    """Rows with every key masked: NaN output (like PyTorch), lse -inf, zero gradients;
    the other rows are unaffected."""
    rng = rng_for("dead", dtype)
    q, k, v = (_rand(rng, (2, 9, 12), dtype) for _ in range(3))
    mask = rng.random((2, 9, 9)) < 0.5
    mask[0, 3] = False
    mask[1, :, :] = False
    mask[1, 4, 2] = True
    out, lse = cpu.attention_forward(q, k, v, mask, False, 0.3)
    assert np.isnan(out[0, 3]).all() and np.isneginf(lse[0, 3])
    assert np.isnan(out[1, [0, 1, 2, 3, 5, 6, 7, 8]]).all() and np.isfinite(out[1, 4]).all()
    _check(q, k, v, mask=mask, scale=0.3, what=f"{isa} dead rows")
    g = np.ones_like(out)
    dq, dk, dv = cpu.attention_backward(g, q, k, v, out, lse, mask, False, 0.3)
    assert np.all(dq[0, 3] == 0) and np.isfinite(dk).all() and np.isfinite(dv).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_noncontiguous_and_broadcast_inputs(isa, dtype):
    """q, k, v as transposes of (B, T, H, D) (the layout after a head split), a negative
    row stride, and k, v broadcast over the batch."""
    rng = rng_for("layout", dtype)
    b, t, h, d = 2, 40, 3, 24
    q, k, v = (_rand(rng, (b, t, h, d), dtype).transpose(0, 2, 1, 3) for _ in range(3))
    assert not q.flags.c_contiguous
    _check(q, k, v, causal=True, what=f"{isa} transposed")
    _check(q, k[:, :, ::-1], v[:, :, ::-1], what=f"{isa} reversed rows")
    kb, vb = _rand(rng, (1, h, 33, d), dtype), _rand(rng, (1, h, 33, 7), dtype)
    out, lse = cpu.attention_forward(q, kb, vb, None, False, 0.2)
    assert_np_close(out, ref_forward(q, np.broadcast_to(kb, (b, h, 33, d)), np.broadcast_to(vb, (b, h, 33, 7)), scale=0.2)[0], *_tol(dtype), "broadcast k, v")
    qs = _rand(rng, (b, t, h, 2 * d), dtype)[..., ::2].transpose(0, 2, 1, 3)  # non-unit last stride: copied
    _check(qs, k, v, what=f"{isa} strided last dim")


def test_large_scores_are_stable(isa):
    rng = rng_for("large")
    q, k, v = (_rand(rng, (2, 50, 16), np.float32) for _ in range(3))
    _check(q * 30, k * 30, v, causal=True, what="large scores")


def test_empty_sizes():
    z = np.zeros
    out, lse = cpu.attention_forward(z((2, 0, 4), np.float32), z((2, 5, 4), np.float32), z((2, 5, 3), np.float32), None, False, 1.0)
    assert out.shape == (2, 0, 3) and lse.shape == (2, 0)
    q = np.ones((2, 3, 4))
    out, lse = cpu.attention_forward(q, z((2, 0, 4)), z((2, 0, 6)), None, False, 1.0)
    assert out.shape == (2, 3, 6) and np.all(out == 0) and np.all(np.isneginf(lse))
    dq, dk, dv = cpu.attention_backward(np.ones_like(out), q, z((2, 0, 4)), z((2, 0, 6)), out, lse, None, False, 1.0)
    assert np.all(dq == 0) and dk.shape == (2, 0, 4) and dv.shape == (2, 0, 6)
    out, lse = cpu.attention_forward(z((0, 4, 3, 8)), z((0, 4, 5, 8)), z((0, 4, 5, 8)), None, True, 1.0)
    assert out.shape == (0, 4, 3, 8)


# ---- thread-count independence -------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 4])
def test_results_do_not_depend_on_thread_count(n):
    """n=1 and n=3 use the two-sweep backward on 2 threads, n=4 the per-item one; all must
    be bit-identical to one thread."""
    rng = rng_for("threads", n)
    q, k, v, g = (_rand(rng, (n, 150, 40), np.float32) for _ in range(4))
    before = C.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            C.set_num_threads(threads)
            out, lse = cpu.attention_forward(q, k, v, None, True, 0.15)
            results.append((out, lse) + tuple(cpu.attention_backward(g, q, k, v, out, lse, None, True, 0.15)))
    finally:
        C.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---- autograd through scaled_dot_product_attention -------------------------------------------
def _t(a, grad=True):
    return pyzen.tensor(a, requires_grad=grad)


@pytest.mark.parametrize("case", ["causal", "bool_mask", "additive_mask", "full"])
def test_gradcheck(case):
    rng = rng_for("gradcheck", case)
    q, k, v = (_t(rng.normal(size=(1, 2, 5, 3))) for _ in range(3))
    mask = None
    if case == "bool_mask":
        m = rng.random((5, 5)) < 0.6
        m[:, 0] = True
        mask = _t(m, False)
    elif case == "additive_mask":
        mask = _t(rng.normal(size=(1, 1, 1, 5)), False)
    assert gradcheck(lambda a, b, c: sdpa(a, b, c, attn_mask=mask, is_causal=case == "causal"), (q, k, v))


def test_float32_gradients_match_float64_reference():
    rng = rng_for("grad32")
    b, h, t, d = 2, 3, 70, 48
    qn, kn, vn, gn = (rng.normal(size=(b, h, t, d)).astype(np.float32) for _ in range(4))
    q, k, v = _t(qn), _t(kn), _t(vn)
    out = sdpa(q, k, v, is_causal=True)
    (out * _t(gn, False)).sum().backward()
    want = ref_grads(gn, qn, kn, vn, causal=True)
    assert_np_close(to_np(out), ref_forward(qn, kn, vn, causal=True)[0], 1e-4, 2e-5, "out")
    for name, got, w in zip("qkv", (q.grad, k.grad, v.grad), want):
        assert to_np(got).dtype == np.float32
        assert_np_close(to_np(got), w, 1e-4, 1e-4, f"d{name}")


def test_broadcast_kv_gradients_are_summed():
    rng = rng_for("bkv")
    qn = rng.normal(size=(2, 3, 6, 4))
    kn, vn = rng.normal(size=(1, 3, 7, 4)), rng.normal(size=(1, 3, 7, 4))
    q, k, v = _t(qn), _t(kn), _t(vn)
    sdpa(q, k, v).sum().backward()
    dq, dk, dv = ref_grads(np.ones((2, 3, 6, 4)), qn, np.broadcast_to(kn, (2, 3, 7, 4)), np.broadcast_to(vn, (2, 3, 7, 4)))
    assert_np_close(to_np(k.grad), dk.sum(0, keepdims=True), 1e-10, 1e-12, "dk")
    assert_np_close(to_np(v.grad), dv.sum(0, keepdims=True), 1e-10, 1e-12, "dv")
    assert_np_close(to_np(q.grad), dq, 1e-10, 1e-12, "dq")


def test_dropout_path_is_statistically_sane():
    """dropout_p > 0 takes the composed path: with uniform attention and v = 1 every output
    is 1/(1-p) * (kept fraction), mean 1; gradients flow."""
    q = _t(np.zeros((2, 4, 64, 8), np.float32))
    k = _t(np.zeros((2, 4, 256, 8), np.float32))
    v = _t(np.ones((2, 4, 256, 8), np.float32))
    out = sdpa(q, k, v, dropout_p=0.5)
    o = to_np(out)
    assert o.shape == (2, 4, 64, 8) and np.isfinite(o).all()
    assert abs(o.mean() - 1.0) < 0.02
    assert 0.03 < o[..., 0].std() < 0.1  # binomial(256, 1/2) * 2/256: std 0.0625
    out.sum().backward()
    assert np.isfinite(to_np(v.grad)).all() and to_np(v.grad).sum() == pytest.approx(o.sum(), rel=1e-4)


# ---- errors ----------------------------------------------------------------------------------
def test_sdpa_argument_errors():
    q = _t(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(RuntimeError, match="scaled_dot_product_attention"):
        sdpa(q, _t(np.zeros((2, 5, 3), np.float32)), q)
    with pytest.raises(TypeError, match="scaled_dot_product_attention"):
        sdpa(q, _t(np.zeros((2, 5, 4))), q)
    with pytest.raises(RuntimeError, match="either attn_mask or is_causal"):
        sdpa(q, q, q, attn_mask=_t(np.ones((5, 5), bool), False), is_causal=True)


def test_native_errors_name_the_op_and_values():
    f = np.zeros((2, 5, 4), np.float32)
    with pytest.raises(TypeError, match=r"attention_forward: expected k of dtype float32.*float64"):
        C.attention_forward(f, f.astype(np.float64), f)
    with pytest.raises(TypeError, match=r"attention_forward: expected q of dtype float32 or float64, got int32"):
        C.attention_forward(f.astype(np.int32), f, f)
    with pytest.raises(ValueError, match=r"attention_forward: expected k of shape \(2, 5, 4\), got \(2, 5, 3\)"):
        C.attention_forward(f, np.zeros((2, 5, 3), np.float32), f)
    with pytest.raises(ValueError, match=r"attention_forward: expected v of shape \(2, 6, 4\)"):
        C.attention_forward(f, np.zeros((2, 6, 4), np.float32), f)
    with pytest.raises(ValueError, match="same number"):
        C.attention_forward(f, f[0], f)
    with pytest.raises(ValueError, match="unit stride along its last dim"):
        C.attention_forward(np.zeros((2, 5, 8), np.float32)[..., ::2], f, f)
    with pytest.raises(TypeError, match="mask of dtype bool or float32, got int64"):
        C.attention_forward(f, f, f, np.ones((2, 5, 5), np.int64))
    with pytest.raises(ValueError, match=r"mask.*shape \(2, 5, 5\), got \(5, 5\)"):
        C.attention_forward(f, f, f, np.ones((5, 5), bool))
    with pytest.raises(TypeError, match="NumPy array"):
        C.attention_forward(f, f, f, [[True]])
    out, lse = C.attention_forward(f, f, f)
    with pytest.raises(ValueError, match=r"attention_backward: expected lse of shape \(2, 5\), got \(2, 4\)"):
        C.attention_backward(out, f, f, f, out, lse[:, :4])
    with pytest.raises(TypeError, match="attention_backward: expected grad of dtype float32"):
        C.attention_backward(out.astype(np.float64), f, f, f, out, lse)
