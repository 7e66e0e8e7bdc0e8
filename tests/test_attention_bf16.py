"""_C.attention_forward_bf16 / attention_backward_bf16, autocast's attention on AMX tiles: against a float64
softmax of the operands rounded by the independent reference (tests/bf16_reference.py), over
tile edges, head dims up to 256, causal and full, strided and broadcast operands; the
probabilities are rounded to bfloat16 for P V (FlashAttention-2's rule), so the output
carries errors of a few 1e-3 while lse stays float32-exact."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen._C as C
from bf16_reference import round_bf16 as ref_round
from test_attention import ref_grads

pytestmark = pytest.mark.skipif("amx" not in C.bf16_paths(), reason="this CPU has no AMX bfloat16 path")


@pytest.fixture(autouse=True)
def amx_path():
    original = C.bf16_path()
    C.set_bf16_path("amx")
    yield
    C.set_bf16_path(original)


def _reference(q, k, v, causal, scale):
    q, k, v = (ref_round(x).astype(np.float64) for x in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) * scale
    if causal:
        tq, tk = s.shape[-2:]
        s = np.where(np.tril(np.ones((tq, tk), bool)), s, -np.inf)
    m = s.max(-1, keepdims=True)
    p = np.exp(s - m)
    l = p.sum(-1, keepdims=True)
    return p @ v / l, (np.log(l) + m)[..., 0]


def _check(q, k, v, causal, scale):
    out, lse = C.attention_forward_bf16(q, k, v, causal, scale)
    want, want_lse = _reference(q, k, v, causal, scale)
    assert out.dtype == np.float32 and out.shape == want.shape and lse.shape == want_lse.shape
    # P in bfloat16: each output is a convex combination of v with weights off by <= 2^-8 relative
    assert np.abs(out - want).max() <= 2**-8 * np.abs(ref_round(v)).max() * 2
    np.testing.assert_allclose(lse, want_lse, rtol=1e-5, atol=1e-5)
    return out


@pytest.mark.parametrize("tq,tk,d,dv", [(1, 1, 1, 1), (31, 33, 16, 8), (32, 32, 32, 32), (33, 65, 64, 48),
                                         (70, 90, 64, 64), (64, 64, 128, 128), (40, 40, 256, 256), (5, 300, 96, 40)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_forward_bf16_matches_the_rounded_reference(rng, tq, tk, d, dv, causal):
    q = rng.standard_normal((2, 3, tq, d)).astype(np.float32)
    k = rng.standard_normal((2, 3, tk, d)).astype(np.float32)
    v = rng.standard_normal((2, 3, tk, dv)).astype(np.float32)
    _check(q, k, v, causal, 1 / np.sqrt(d))


def _check_backward(q, k, v, g, causal, scale):
    out, lse = C.attention_forward_bf16(q, k, v, causal, scale)
    got = C.attention_backward_bf16(g, q, k, v, out, lse, causal, scale)
    want = ref_grads(*(ref_round(x) for x in (g, q, k, v)), None, causal, scale)
    for name, a, b in zip(("dq", "dk", "dv"), got, want):
        assert a.dtype == np.float32 and a.shape == b.shape, name
        # P and dS in bfloat16 for their products: about 2^-8 of the largest term
        assert np.abs(a - b).max() <= 2**-6 * np.abs(b).max() + 1e-6, f"{name}: {np.abs(a - b).max()}"


@pytest.mark.parametrize("tq,tk,d,dv", [(1, 1, 1, 1), (31, 33, 16, 8), (33, 65, 64, 48), (70, 90, 64, 64),
                                         (40, 40, 256, 256), (5, 300, 96, 40), (100, 50, 64, 64)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_backward_bf16_matches_the_rounded_reference(rng, tq, tk, d, dv, causal):
    q = rng.standard_normal((2, tq, d)).astype(np.float32)
    k = rng.standard_normal((2, tk, d)).astype(np.float32)
    v = rng.standard_normal((2, tk, dv)).astype(np.float32)
    g = rng.standard_normal((2, tq, dv)).astype(np.float32)
    _check_backward(q, k, v, g, causal, 1 / np.sqrt(d))


def test_attention_forward_bf16_strided_and_broadcast_operands(rng):
    base = rng.standard_normal((2, 50, 3, 64)).astype(np.float32)
    q = base.transpose(0, 2, 1, 3)  # (2, 3, 50, 64): rows 3*64 apart, as heads split from one array
    k = np.broadcast_to(rng.standard_normal((1, 1, 45, 64)).astype(np.float32), (2, 3, 45, 64))
    v = rng.standard_normal((2, 3, 45, 128)).astype(np.float32)[..., ::2]  # unit stride needed only in Dv
    v = np.ascontiguousarray(v)
    _check(q, k, v, True, 0.2)
    g = rng.standard_normal((2, 3, 50, 64)).astype(np.float32)
    _check_backward(q, np.ascontiguousarray(k), v, g, True, 0.2)


def test_attention_forward_bf16_same_bits_for_any_thread_count(rng):
    q, k, v = (rng.standard_normal((3, 2, 100, 64)).astype(np.float32) for _ in range(3))
    original = C.get_num_threads()
    try:
        runs = []
        for t in (1, 2, 3):
            C.set_num_threads(t)
            runs.append(C.attention_forward_bf16(q, k, v, True, 0.125))
    finally:
        C.set_num_threads(original)
    for out, lse in runs[1:]:
        assert np.array_equal(out, runs[0][0]) and np.array_equal(lse, runs[0][1])
    g = rng.standard_normal(q.shape).astype(np.float32)
    out, lse = runs[0]
    try:
        grads = []
        for t in (1, 2, 3):
            C.set_num_threads(t)
            grads.append(C.attention_backward_bf16(g, q, k, v, out, lse, True, 0.125))
    finally:
        C.set_num_threads(original)
    assert all(np.array_equal(a, b) for later in grads[1:] for a, b in zip(grads[0], later))


def test_attention_forward_bf16_validates(rng):
    x = np.ones((1, 4, 8), np.float32)
    with pytest.raises(TypeError, match="attention_forward_bf16: expected float32"):
        C.attention_forward_bf16(x.astype(np.float64), x.astype(np.float64), x.astype(np.float64))
    big = np.ones((1, 4, 264), np.float32)
    with pytest.raises(ValueError, match="attention_forward_bf16: head dims up to 256"):
        C.attention_forward_bf16(big, big, big)
    with pytest.raises(ValueError, match=r"attention_backward_bf16: expected lse.*shape|attention_backward_bf16.*lse"):
        C.attention_backward_bf16(x, x, x, x, x, np.ones((1, 5), np.float32))
    C.set_bf16_path("float32")
    with pytest.raises(ValueError, match="attention_forward_bf16: needs the 'amx' bfloat16 path"):
        C.attention_forward_bf16(x, x, x)
    with pytest.raises(ValueError, match="attention_backward_bf16: needs the 'amx' bfloat16 path"):
        C.attention_backward_bf16(x, x, x, x, x, np.ones((1, 4), np.float32))
