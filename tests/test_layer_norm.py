"""layer_norm: pyzen._C.layer_norm_forward/backward (through the CPU backend) on every ISA
against a NumPy float64 reference written here; thread-count independence; stability for
large means; bad inputs; pyzen.ops.fused.layer_norm with gradcheck."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
import pyzen._C as C
from pyzen.backend import cpu
from conftest import assert_np_close, rng_for

COLS = [1, 7, 8, 9, 15, 16, 17, 33, 100, 1023]
DTYPES = [np.float32, np.float64]
EPS = 1e-5


def ref_forward(x, w, b, eps):
    x = x.astype(np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mu) * rstd
    if w is not None:
        y = y * w.astype(np.float64)
    if b is not None:
        y = y + b.astype(np.float64)
    return y, mu[..., 0], rstd[..., 0]


def ref_backward(g, x, w, eps):
    """Gradients of sum(g * layer_norm(x)) from the float64 definition."""
    g, x = g.astype(np.float64), x.astype(np.float64)
    _, mu, rstd = ref_forward(x, None, None, eps)
    xhat = (x - mu[..., None]) * rstd[..., None]
    gw = g * w.astype(np.float64) if w is not None else g
    n = x.shape[-1]
    dx = rstd[..., None] / n * (n * gw - gw.sum(-1, keepdims=True) - xhat * (gw * xhat).sum(-1, keepdims=True))
    rows = tuple(range(x.ndim - 1))
    return dx, (g * xhat).sum(axis=rows), g.sum(axis=rows)


def tols(dtype, n=1):
    return (1e-12, 1e-11) if dtype == np.float64 else (2e-5, 2e-5 * max(1.0, np.sqrt(n) / 4))


def make(rng, shape, dtype, affine):
    x = rng.standard_normal(shape).astype(dtype) * 2 + 0.5
    c = shape[-1]
    w = (rng.standard_normal(c) + 1).astype(dtype) if affine[0] else None
    b = rng.standard_normal(c).astype(dtype) if affine[1] else None
    return x, w, b


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cols", COLS)
def test_forward_backward_matches_reference(isa, dtype, cols):
    rng = rng_for("ln", isa, dtype, cols)
    rtol, atol = tols(dtype)
    for shape in [(0, cols), (1, cols), (5, cols), (2, 3, cols)]:
        for affine in [(True, True), (True, False), (False, True), (False, False)]:
            x, w, b = make(rng, shape, dtype, affine)
            out, mean, rstd = cpu.layer_norm_forward(x, w, b, EPS)
            want, mu, rs = ref_forward(x, w, b, EPS)
            what = f"{shape} {np.dtype(dtype).name} affine={affine}"
            assert out.dtype == mean.dtype == rstd.dtype == dtype, what
            assert mean.shape == rstd.shape == shape[:-1], what
            assert_np_close(out, want, rtol, atol, "out " + what)
            assert_np_close(mean, mu, rtol, atol, "mean " + what)
            assert_np_close(rstd, rs, rtol, atol * 10, "rstd " + what)
            g = rng.standard_normal(shape).astype(dtype)
            dx, dw, db = cpu.layer_norm_backward(g, x, w, mean, rstd, b is not None)
            rdx, rdw, rdb = ref_backward(g, x, w, EPS)
            assert_np_close(dx, rdx, rtol, atol * 5, "dx " + what)
            rows = int(np.prod(shape[:-1]))
            if w is None:
                assert dw is None
            else:
                assert dw.dtype == dtype and dw.shape == (cols,)
                assert_np_close(dw, rdw, rtol, tols(dtype, rows)[1] * 5, "dweight " + what)
            if b is None:
                assert db is None
            else:
                assert db.dtype == dtype and db.shape == (cols,)
                assert_np_close(db, rdb, rtol, tols(dtype, rows)[1] * 5, "dbias " + what)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_non_contiguous_inputs(isa, dtype):
    rng = rng_for("ln-strided", isa, dtype)
    base = rng.standard_normal((6, 40)).astype(dtype)
    x = base[::2, ::2]  # (3, 20), strided both ways
    wb = rng.standard_normal(40).astype(dtype)
    w, b = wb[::2], wb[1::2]
    out, mean, rstd = cpu.layer_norm_forward(x, w, b, EPS)
    rtol, atol = tols(dtype)
    assert_np_close(out, ref_forward(x, w, b, EPS)[0], rtol, atol, "out")
    g = rng.standard_normal((20, 3)).astype(dtype).T  # transposed gradient
    dx, dw, db = cpu.layer_norm_backward(g, x, w, mean, rstd, True)
    rdx, rdw, rdb = ref_backward(g, x, w, EPS)
    for name, got, want in [("dx", dx, rdx), ("dw", dw, rdw), ("db", db, rdb)]:
        assert_np_close(got, want, rtol, atol * 5, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_large_output_streamed(isa, dtype):
    """Outputs over 8 MiB take the non-temporal-store path; odd C misaligns every row start."""
    rng = rng_for("ln-stream", isa, dtype)
    rows = (9 << 20) // (1001 * np.dtype(dtype).itemsize) + 1
    x, w, b = make(rng, (rows, 1001), dtype, (True, True))
    out, mean, rstd = cpu.layer_norm_forward(x, w, b, EPS)
    rtol, atol = tols(dtype)
    assert_np_close(out, ref_forward(x, w, b, EPS)[0], rtol, atol, "out")
    g = rng.standard_normal(x.shape).astype(dtype)
    dx, dw, db = cpu.layer_norm_backward(g, x, w, mean, rstd, True)
    rdx, rdw, rdb = ref_backward(g, x, w, EPS)
    assert_np_close(dx, rdx, rtol, atol * 5, "dx")
    assert_np_close(dw, rdw, rtol, tols(dtype, rows)[1] * 5, "dweight")
    assert_np_close(db, rdb, rtol, tols(dtype, rows)[1] * 5, "dbias")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_same_bits_for_any_thread_count(isa, dtype):
    rng = rng_for("ln-threads", isa, dtype)
    x, w, b = make(rng, (517, 257), dtype, (True, True))  # > the kernels' one-thread grain
    g = rng.standard_normal(x.shape).astype(dtype)
    before = C.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            C.set_num_threads(n)
            out, mean, rstd = cpu.layer_norm_forward(x, w, b, EPS)
            results.append((out, mean, rstd) + cpu.layer_norm_backward(g, x, w, mean, rstd, True))
    finally:
        C.set_num_threads(before)
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            assert np.array_equal(a, b_), "result depends on the thread count"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_large_mean_tiny_variance(isa, dtype):
    rng = rng_for("ln-stable", isa, dtype)
    x = (1e4 + 1e-2 * rng.standard_normal((4, 1000))).astype(dtype)
    out, mean, rstd = cpu.layer_norm_forward(x, None, None, 1e-12)
    want, mu, rs = ref_forward(x, None, None, 1e-12)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    assert np.all(np.isfinite(out))
    assert_np_close(rstd, rs, rtol, 0, "rstd")  # E[x^2] - E[x]^2 would lose every digit here
    assert_np_close(out, want, rtol, rtol, "out")


def test_bad_inputs_raise():
    x = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"layer_norm_forward: weight has shape \(5,\), expected \(4,\)"):
        C.layer_norm_forward(x, np.ones(5, np.float32), None, EPS)
    with pytest.raises(TypeError, match="layer_norm_forward: bias has dtype float64, expected float32"):
        C.layer_norm_forward(x, None, np.ones(4), EPS)
    with pytest.raises(TypeError, match="layer_norm_forward: x must be float32 or float64, got int64"):
        C.layer_norm_forward(np.ones((2, 4), np.int64), None, None, EPS)
    with pytest.raises(ValueError, match="layer_norm_forward: x must be C-contiguous"):
        C.layer_norm_forward(np.ones((4, 2), np.float32).T, None, None, EPS)
    with pytest.raises(ValueError, match="at least one dimension"):
        C.layer_norm_forward(np.ones((), np.float32), None, None, EPS)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        C.layer_norm_forward(x, None, None, -1.0)
    out, mean, rstd = C.layer_norm_forward(x, None, None, EPS)
    with pytest.raises(ValueError, match=r"layer_norm_backward: g has shape \(2, 3\), expected \(2, 4\)"):
        C.layer_norm_backward(np.ones((2, 3), np.float32), x, None, mean, rstd, False)
    with pytest.raises(ValueError, match=r"layer_norm_backward: mean has shape \(3,\), expected \(2,\)"):
        C.layer_norm_backward(x, x, None, np.ones(3, np.float32), rstd, False)
    with pytest.raises(TypeError, match="layer_norm_backward: rstd has dtype float64"):
        C.layer_norm_backward(x, x, None, mean, rstd.astype(np.float64), False)
    with pytest.raises(TypeError):
        C.layer_norm_forward([[1.0, 2.0]], None, None, EPS)  # not an array: no silent conversion


def test_public_op_forward_and_gradcheck():
    rng = rng_for("ln-public")
    x = pyzen.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    w = pyzen.tensor(rng.standard_normal(5) + 1, requires_grad=True)
    b = pyzen.tensor(rng.standard_normal(5), requires_grad=True)
    from pyzen.ops.fused import layer_norm

    y = layer_norm(x, 5, w, b, EPS)
    assert_np_close(y.detach().numpy(), ref_forward(x.detach().numpy(), w.detach().numpy(), b.detach().numpy(), EPS)[0], 1e-12, 1e-12, "out")
    assert pyzen.autograd.gradcheck(lambda a, c, d: layer_norm(a, 5, c, d, EPS), (x, w, b))
    assert pyzen.autograd.gradcheck(lambda a: layer_norm(a, (2, 5), None, None, EPS), (pyzen.tensor(rng.standard_normal((3, 2, 5)), requires_grad=True),))
