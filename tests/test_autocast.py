"""`pyzen.autocast(..., dtype=pyzen.bfloat16)`: the autocast state, bfloat16 rounding, and
scaled_dot_product_attention with bfloat16 inputs on the CPU and on CUDA (real GPU or the
emulator), against float64 NumPy references on inputs rounded by tests/bf16_reference.py
(an implementation independent of pyzen's)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import pyzen
from bf16_reference import round_bf16 as ref_round
from conftest import assert_np_close, to_np
from test_attention import ref_forward, ref_grads


def _special_values(rng) -> np.ndarray:
    """Normal values over the whole exponent range, every bit pattern class, exact ties,
    subnormals, the overflow threshold, inf and nan."""
    scaled = rng.standard_normal(20000) * 10.0 ** rng.integers(-40, 39, 20000)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    edges = [0.0, -0.0, 1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 1e-45, 1e-40, 3.3895314e38, 3.39e38, 3.3963e38,
             -3.4028235e38, np.inf, -np.inf, np.nan]
    with np.errstate(over="ignore"):
        return np.concatenate([scaled.astype(np.float32), bits, np.array(edges, np.float32)])


def _same_bits(a, b) -> bool:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))))


def test_round_bf16_on_the_cpu_matches_the_reference_bit_for_bit(rng):
    from pyzen.backend import cpu

    x = _special_values(rng)
    assert _same_bits(cpu.round_bf16(x), ref_round(x))
    view = x[:40000].reshape(4, -1)[:, ::3]  # a strided view keeps its shape
    got = cpu.round_bf16(view)
    assert got.shape == view.shape and _same_bits(got, ref_round(view))


def test_round_bf16_on_the_device_matches_the_reference_bit_for_bit(device, rng):
    from pyzen.backend import cuda as cuda_backend

    x = _special_values(rng)
    got = cuda_backend.to_numpy(cuda_backend.round_bf16(cuda_backend.asarray(x)))
    assert _same_bits(got, ref_round(x))


# ---- the autocast state ----
def test_autocast_state_nests_restores_and_is_per_thread():
    bf16 = pyzen.bfloat16
    assert pyzen.amp.get_autocast_dtype("cuda") is None and not pyzen.amp.is_autocast_enabled("cuda")
    with pyzen.autocast("cuda", dtype=bf16):
        assert pyzen.amp.get_autocast_dtype("cuda") is bf16 and pyzen.amp.get_autocast_dtype("cpu") is None
        with pyzen.autocast("cuda", enabled=False):
            assert not pyzen.amp.is_autocast_enabled("cuda")
            seen = []
            t = threading.Thread(target=lambda: seen.append(pyzen.amp.get_autocast_dtype("cuda")))
            t.start(), t.join()
            assert seen == [None]
        assert pyzen.amp.get_autocast_dtype("cuda") is bf16
    assert pyzen.amp.get_autocast_dtype("cuda") is None

    @pyzen.amp.autocast("cpu", dtype=bf16)
    def inside():
        return pyzen.amp.get_autocast_dtype("cpu")

    assert inside() is bf16 and pyzen.amp.get_autocast_dtype("cpu") is None
    with pytest.raises(RuntimeError), pyzen.autocast("cpu", dtype=bf16):  # an exception still restores
        raise RuntimeError("inside")
    assert pyzen.amp.get_autocast_dtype("cpu") is None


def test_bfloat16_is_a_compute_dtype_no_tensor_holds():
    assert repr(pyzen.bfloat16) == "pyzen.bfloat16" and pyzen.bfloat16.is_floating_point
    for make in (lambda: pyzen.zeros(3, dtype=pyzen.bfloat16), lambda: pyzen.tensor([1.0], dtype=pyzen.bfloat16),
                 lambda: pyzen.ones(2).to(pyzen.bfloat16)):
        with pytest.raises(TypeError, match="bfloat16"):
            make()
    with pytest.raises(TypeError, match="float16"):
        pyzen.autocast("cuda", dtype=pyzen.int64)


# ---- attention under autocast ----
def _qkvg(rng, shape_q=(2, 3, 40, 64), tk=56):
    q = rng.standard_normal(shape_q).astype(np.float32)
    k = rng.standard_normal(shape_q[:-2] + (tk, shape_q[-1])).astype(np.float32)
    v = rng.standard_normal(k.shape).astype(np.float32)
    g = rng.standard_normal(shape_q).astype(np.float32)
    return q, k, v, g


def _attention(dev, q, k, v, g, causal, mask=None, dropout_p=0.0):
    ts = [pyzen.tensor(a, device=dev, requires_grad=True) for a in (q, k, v)]
    m = None if mask is None else pyzen.tensor(mask, device=dev)
    out = pyzen.nn.functional.scaled_dot_product_attention(*ts, attn_mask=m, is_causal=causal, dropout_p=dropout_p)
    out.backward(pyzen.tensor(g, device=dev))
    return to_np(out), [to_np(t.grad) for t in ts]


def _check_rounded(dev, q, k, v, g, causal, mask, rtol, atol):
    """Under autocast: output and gradients match the float64 reference at the rounded
    inputs (the gradient passes the rounding straight through)."""
    with pyzen.autocast(dev, dtype=pyzen.bfloat16):
        out, grads = _attention(dev, q, k, v, g, causal, mask)
    qr, kr, vr, gr = (ref_round(a) for a in (q, k, v, g))
    want, _, _ = ref_forward(qr, kr, vr, mask, causal)
    assert_np_close(out, want, rtol, atol, what="bf16 attention out")
    for got, ref, name in zip(grads, ref_grads(gr, qr, kr, vr, mask, causal), "qkv"):
        assert_np_close(got, ref, rtol, atol, what=f"bf16 attention d{name}")
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_cpu_attention_rounds_its_inputs_under_autocast(bf16_path, rng, causal):
    q, k, v, g = _qkvg(rng)
    # AMX rounds the probabilities too (as the CUDA kernel: see below); the float32 path is exact
    rtol, atol = (2e-2, 1.5e-2) if bf16_path == "amx" else (1e-4, 2e-5)
    out = _check_rounded("cpu", q, k, v, g, causal, None, rtol, atol)
    unrounded, _, _ = ref_forward(q, k, v, None, causal)
    assert np.abs(out - unrounded).max() > 1e-3  # the rounding really happened
    with pyzen.autocast("cuda", dtype=pyzen.bfloat16):  # another device type's autocast: float32
        plain, _ = _attention("cpu", q, k, v, g, causal)
    assert_np_close(plain, unrounded, 1e-4, 2e-5, what="cpu attention under a cuda autocast")


def test_autocast_leaves_float64_and_masked_or_dropout_calls_correct(rng):
    q, k, v, g = _qkvg(rng, (2, 9, 16), 11)
    with pyzen.autocast("cpu", dtype=pyzen.bfloat16):
        out64, _ = _attention("cpu", q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), g, False)
    assert_np_close(out64, ref_forward(q, k, v)[0], 1e-10, 1e-12, what="float64 attention under autocast")
    mask = rng.random((9, 11)) > 0.3
    _check_rounded("cpu", q, k, v, g, False, mask, 1e-4, 2e-5)
    pyzen.manual_seed(3)
    with pyzen.autocast("cpu", dtype=pyzen.bfloat16):  # the composed path: its matmuls round q, k, p and v
        dropped, _ = _attention("cpu", q, k, v, g, False, dropout_p=0.5)
    pyzen.manual_seed(3)
    prerounded, _ = _attention("cpu", ref_round(q), ref_round(k), ref_round(v), g, False, dropout_p=0.5)
    assert_np_close(dropped, prerounded, 2e-2, 1e-2, what="dropout attention under autocast")
    assert not np.array_equal(dropped, prerounded)  # p was rounded too


# bfloat16 products: p and ds are rounded to bfloat16 before multiplying (FlashAttention-2's
# rule), errors of a few 1e-3 at these sizes; the emulator computes exactly.
@pytest.mark.parametrize("d,causal", [(32, True), (64, True), (64, False), (128, True), (16, False)])
def test_device_attention_under_autocast(device, rng, d, causal):
    q, k, v, g = _qkvg(rng, (2, 2, 70, d), 90)
    _check_rounded("cuda", q, k, v, g, causal, None, 2e-2, 1.5e-2)


# ---- matmul (and so nn.Linear) under autocast ----
MATMUL_SHAPES = [((5, 7), (7, 3)), ((2, 3, 33, 20), (20, 17)), ((4, 9, 16), (4, 16, 5)), ((130, 45), (45, 70))]


def _check_matmul(dev, rng, shape_a, shape_b):
    """a @ b under autocast, and its gradients (which round their operands too), against
    float64 products of the rounded operands; bfloat16 products are exact in float32, so
    only the float32 sum separates them."""
    a, b = rng.standard_normal(shape_a).astype(np.float32), rng.standard_normal(shape_b).astype(np.float32)
    g = rng.standard_normal(np.broadcast_shapes(shape_a[:-1] + (1,), shape_b[:-2] + (1, 1))[:-1] + shape_b[-1:]).astype(np.float32)
    ta, tb = pyzen.tensor(a, device=dev, requires_grad=True), pyzen.tensor(b, device=dev, requires_grad=True)
    with pyzen.autocast(dev, dtype=pyzen.bfloat16):
        out = ta @ tb
    out.backward(pyzen.tensor(g, device=dev))
    ra, rb, rg = (ref_round(x).astype(np.float64) for x in (a, b, g))
    assert_np_close(to_np(out), ra @ rb, 1e-4, 1e-5, what="bf16 matmul")
    ga = rg @ np.swapaxes(rb, -1, -2)
    gb = np.swapaxes(ra, -1, -2) @ rg
    gb = gb.reshape((-1,) + shape_b).sum(0) if len(shape_b) < gb.ndim else gb
    assert_np_close(to_np(ta.grad), ga, 1e-4, 1e-5, what="bf16 matmul da")
    assert_np_close(to_np(tb.grad), gb, 1e-4, 1e-5, what="bf16 matmul db")
    assert np.abs(to_np(out) - a.astype(np.float64) @ b).max() > 1e-3  # the rounding really happened


@pytest.mark.parametrize("shape_a,shape_b", MATMUL_SHAPES)
def test_cpu_matmul_under_autocast(bf16_path, rng, shape_a, shape_b):
    _check_matmul("cpu", rng, shape_a, shape_b)


@pytest.mark.parametrize("shape_a,shape_b", MATMUL_SHAPES)
def test_device_matmul_under_autocast(device, rng, shape_a, shape_b):
    _check_matmul("cuda", rng, shape_a, shape_b)


def test_linear_under_autocast_keeps_float32_outputs_and_float64_exact(bf16_path, rng):
    lin = pyzen.nn.Linear(12, 5)
    x = pyzen.tensor(rng.standard_normal((3, 12)).astype(np.float32))
    with pyzen.autocast("cpu", dtype=pyzen.bfloat16):
        y = lin(x)
        y64 = lin.double()(x.double())
    w, bias = to_np(lin.weight), to_np(lin.bias)
    assert y.dtype is pyzen.float32
    want = ref_round(to_np(x)).astype(np.float64) @ ref_round(w.astype(np.float32)).T.astype(np.float64) + bias
    assert_np_close(to_np(y), want, 1e-4, 1e-5, what="linear under autocast")
    assert_np_close(to_np(y64), to_np(x).astype(np.float64) @ w.T + bias, 1e-12, 1e-12, what="float64 linear under autocast")


@pytest.mark.parametrize("x_shape", [(7,), (33, 20), (2, 9, 20)])
def test_linear_backward_under_autocast(bf16_path, rng, x_shape):
    """F.linear's one-node backward rounds g, x and w as the forward does; the weight's
    gradient is g^T x in the weight's own layout."""
    k = x_shape[-1]
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (x_shape, (17, k), (17,)))
    g = rng.standard_normal(x_shape[:-1] + (17,)).astype(np.float32)
    tx, tw, tb = (pyzen.tensor(v, requires_grad=True) for v in (x, w, b))
    with pyzen.autocast("cpu", dtype=pyzen.bfloat16):
        out = pyzen.nn.functional.linear(tx, tw, tb)
    out.backward(pyzen.tensor(g))
    rx, rw, rg = (ref_round(v).astype(np.float64) for v in (x, w, g))
    assert_np_close(to_np(out), rx @ rw.T + b, 1e-4, 1e-5, what="bf16 linear")
    assert_np_close(to_np(tx.grad), rg @ rw, 1e-4, 1e-5, what="bf16 linear dx")
    g2, x2 = rg.reshape(-1, 17), rx.reshape(-1, k)
    assert_np_close(to_np(tw.grad), g2.T @ x2, 1e-4, 1e-5, what="bf16 linear dw")
    assert_np_close(to_np(tb.grad), g.reshape(-1, 17).sum(0), 1e-4, 1e-5, what="bf16 linear db")
    assert to_np(tw.grad).flags.c_contiguous
