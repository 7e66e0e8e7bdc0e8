"""cross_entropy: pyzen._C.cross_entropy_forward/backward (through the CPU backend) on every
ISA against a NumPy float64 reference written here; extreme logits; ignore_index; label
smoothing; bad inputs; pyzen.ops.fused.cross_entropy with gradcheck."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
import pyzen._C as C
from pyzen.backend import cpu
from conftest import assert_np_close, rng_for

COLS = [1, 7, 8, 9, 15, 16, 17, 33, 100, 1023]
DTYPES = [np.float32, np.float64]
IGNORE = -100


def ref_lse(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[:, 0]


def ref_forward(x, t, ignore, ls):
    x = x.astype(np.float64)
    n, c = x.shape
    lse = ref_lse(x)
    keep = t != ignore
    safe = np.where(keep, t, 0)
    logp = x - lse[:, None]
    loss = -(1 - ls) * logp[np.arange(n), safe]
    if ls:
        loss = loss - ls * logp.mean(axis=-1)
    return np.where(keep, loss, 0.0), lse


def ref_backward(g, x, t, ignore, ls):
    x = x.astype(np.float64)
    n, c = x.shape
    p = np.exp(x - ref_lse(x)[:, None])
    onehot = np.zeros_like(p)
    keep = t != ignore
    onehot[np.arange(n)[keep], t[keep]] = 1.0
    return (p - (1 - ls) * onehot - ls / c) * np.where(keep, g, 0.0)[:, None]


def tols(dtype):
    return (1e-11, 1e-12) if dtype == np.float64 else (2e-5, 2e-6)


def targets(rng, n, c):
    t = rng.integers(0, c, n)
    t[::4] = IGNORE  # every fourth row ignored
    return t


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cols", COLS)
def test_forward_backward_matches_reference(isa, dtype, cols):
    rng = rng_for("ce", isa, dtype, cols)
    rtol, atol = tols(dtype)
    for n in (0, 1, 6):
        for ls in (0.0, 0.1, 1.0):
            x = (rng.standard_normal((n, cols)) * 3).astype(dtype)
            t = targets(rng, n, cols)
            losses, lse = cpu.cross_entropy_forward(x, t, IGNORE, ls)
            want, want_lse = ref_forward(x, t, IGNORE, ls)
            what = f"n={n} C={cols} ls={ls} {np.dtype(dtype).name}"
            assert losses.dtype == lse.dtype == dtype and losses.shape == lse.shape == (n,), what
            assert_np_close(lse, want_lse, rtol, atol, "lse " + what)
            assert_np_close(losses, want, rtol, atol * 4, "loss " + what)
            g = rng.standard_normal(n).astype(dtype)
            d = cpu.cross_entropy_backward(g, x, t, lse, IGNORE, ls)
            assert d.dtype == dtype and d.shape == (n, cols), what
            assert_np_close(d, ref_backward(g, x, t, IGNORE, ls), rtol, atol, "dlogits " + what)
            assert not d[t == IGNORE].any(), "ignored rows must get a zero gradient"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_extreme_logits(isa, dtype):
    rng = rng_for("ce-extreme", isa, dtype)
    x = rng.choice([-1e4, 1e4], size=(8, 37)).astype(dtype)
    x[:, 5] = 1e4  # the largest value is present in every row
    x[1, :] = -1e4  # a constant row
    t = np.array([5, 3, 7, 0, 36, 5, 1, 2])
    for ls in (0.0, 0.2):
        want, want_lse = ref_forward(x, t, IGNORE, ls)
        losses, lse = cpu.cross_entropy_forward(x, t, IGNORE, ls)
        assert np.isfinite(losses).all() and np.isfinite(lse).all()
        assert_np_close(lse, want_lse, 1e-6, 0, f"lse ls={ls}")
        assert_np_close(losses, want, 1e-6, 1e-6, f"loss ls={ls}")
        d = cpu.cross_entropy_backward(np.ones(8, dtype), x, t, lse, IGNORE, ls)
        assert np.isfinite(d).all()
        # lse is stored in the logits' dtype (near 1e4 a float32 lse is rounded to 2^-10, 5e-4
        # relative in exp(x - lse)): the backward recomputes it for such rows.
        dtol = 1e-5 if dtype == np.float32 else 1e-9
        assert_np_close(d, ref_backward(np.ones(8), x, t, IGNORE, ls), dtol, dtol, f"dlogits ls={ls}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_masked_classes(isa, dtype):
    """-inf logits (masked vocabulary) get probability 0; the loss stays finite."""
    rng = rng_for("ce-masked", isa, dtype)
    x = rng.standard_normal((3, 40)).astype(dtype)
    x[:, 20:] = -np.inf
    x[2, :] = -np.inf
    x[2, 7] = 0.5
    t = np.array([3, 19, 7])
    losses, lse = cpu.cross_entropy_forward(x, t, IGNORE, 0.0)
    want, want_lse = ref_forward(x, t, IGNORE, 0.0)
    assert_np_close(lse, want_lse, *tols(dtype), "lse")
    assert_np_close(losses, want, *tols(dtype), "loss")
    assert losses[2] == 0  # the only finite logit is the target
    d = cpu.cross_entropy_backward(np.ones(3, dtype), x, t, lse, IGNORE, 0.0)
    assert_np_close(d, ref_backward(np.ones(3), x, t, IGNORE, 0.0), *tols(dtype), "dlogits")


def test_non_contiguous_and_ignore_index_inside_range(isa):
    rng = rng_for("ce-strided", isa)
    x = rng.standard_normal((9, 14))[::2, ::2]  # (5, 7) strided
    t = np.array([0, 3, 6, 3, 2])[::-1]
    for ignore in (3, IGNORE):
        losses, lse = cpu.cross_entropy_forward(x, t, ignore, 0.05)
        assert_np_close(losses, ref_forward(x, t, ignore, 0.05)[0], 1e-12, 1e-12, f"loss ignore={ignore}")
        g = rng.standard_normal(5)
        d = cpu.cross_entropy_backward(g, x, t, lse, ignore, 0.05)
        assert_np_close(d, ref_backward(g, x, t, ignore, 0.05), 1e-12, 1e-12, f"dlogits ignore={ignore}")


def test_same_bits_for_any_thread_count(isa):
    rng = rng_for("ce-threads", isa)
    x = (rng.standard_normal((300, 333)) * 4).astype(np.float32)
    t = targets(rng, 300, 333)
    g = rng.standard_normal(300).astype(np.float32)
    before = C.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            C.set_num_threads(n)
            losses, lse = cpu.cross_entropy_forward(x, t, IGNORE, 0.1)
            results.append((losses, lse, cpu.cross_entropy_backward(g, x, t, lse, IGNORE, 0.1)))
    finally:
        C.set_num_threads(before)
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other))


def test_bad_inputs_raise():
    x = np.zeros((3, 5), np.float32)
    t = np.array([0, 1, 2])
    with pytest.raises(IndexError, match=r"cross_entropy_forward: target\[1\] = 5 is out of bounds for 5 classes"):
        C.cross_entropy_forward(x, np.array([0, 5, 2]), IGNORE, 0.0)
    with pytest.raises(IndexError, match=r"cross_entropy_backward: target\[2\] = -1 is out of bounds"):
        C.cross_entropy_backward(np.ones(3, np.float32), x, np.array([0, 1, -1]), np.ones(3, np.float32), IGNORE, 0.0)
    with pytest.raises(TypeError, match="cross_entropy_forward: target must be int64, got int32"):
        C.cross_entropy_forward(x, t.astype(np.int32), IGNORE, 0.0)
    with pytest.raises(TypeError, match="cross_entropy_forward: logits must be float32 or float64, got int64"):
        C.cross_entropy_forward(x.astype(np.int64), t, IGNORE, 0.0)
    with pytest.raises(ValueError, match=r"target has shape \(2,\), expected \(3,\)"):
        C.cross_entropy_forward(x, t[:2], IGNORE, 0.0)
    with pytest.raises(ValueError, match=r"logits must be 2-D \(N, C\), got shape \(15,\)"):
        C.cross_entropy_forward(x.reshape(-1), t, IGNORE, 0.0)
    with pytest.raises(ValueError, match="logits must be C-contiguous"):
        C.cross_entropy_forward(np.zeros((5, 3), np.float32).T, t, IGNORE, 0.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        C.cross_entropy_forward(x, t, IGNORE, 1.5)
    with pytest.raises(TypeError, match="cross_entropy_backward: g has dtype float64, expected float32"):
        C.cross_entropy_backward(np.ones(3), x, t, np.ones(3, np.float32), IGNORE, 0.0)
    with pytest.raises(ValueError, match=r"cross_entropy_backward: lse has shape \(4,\), expected \(3,\)"):
        C.cross_entropy_backward(np.ones(3, np.float32), x, t, np.ones(4, np.float32), IGNORE, 0.0)


@pytest.mark.parametrize("ls", [0.0, 0.3])
def test_public_op_and_gradcheck(ls):
    from pyzen.ops.fused import cross_entropy

    rng = rng_for("ce-public", ls)
    x = pyzen.tensor(rng.standard_normal((4, 6)) * 2, requires_grad=True)
    t = pyzen.tensor(np.array([1, IGNORE, 5, 0]))
    want = ref_forward(x.detach().numpy(), t.numpy(), IGNORE, ls)[0]
    got = cross_entropy(x, t, label_smoothing=ls)
    assert_np_close(got.detach().numpy(), want.sum() / 3, 1e-12, 1e-12, "mean loss")
    assert_np_close(cross_entropy(x, t, reduction="none", label_smoothing=ls).detach().numpy(), want, 1e-12, 1e-12, "losses")
    assert pyzen.autograd.gradcheck(lambda a: cross_entropy(a, t, label_smoothing=ls), (x,))
    assert pyzen.autograd.gradcheck(lambda a: cross_entropy(a, t, reduction="none", label_smoothing=ls), (x,))
