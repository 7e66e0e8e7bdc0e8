"""Fuzzing the native binding layer pyzen._C: every call returns a correct result or raises a
Python exception naming the op; nothing crashes the interpreter.

The random fuzz loop (tests/native_fuzzer.py) runs in a child process, so a crash fails a
test instead of killing pytest. PYZEN_FUZZ_EXAMPLES=<n> sets its number of cases (default
1300, about two seconds). The targeted tests below pin the important bad inputs readably.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyzen
from conftest import fuzz_examples
from native_fuzzer import OPS

C = pyzen._C
HERE = Path(__file__).resolve().parent
ROOT = Path(pyzen.__file__).resolve().parent.parent
FUZZ_CASES = fuzz_examples(1300)


def test_random_calls_in_a_child_process():
    """Seeded random calls, valid and broken, into every function of pyzen._C."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "native_fuzzer.py"), str(FUZZ_CASES), "20251122"],
        capture_output=True, text=True, cwd=ROOT, timeout=60 + FUZZ_CASES // 20,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
    )
    assert proc.returncode == 0, f"fuzzer died with {proc.returncode}:\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["failures"], "\n".join(report["failures"][:20])
    assert report["cases"] == FUZZ_CASES == report["returned"] + report["raised"]
    assert min(report["by_op"].values()) >= FUZZ_CASES // len(OPS)  # every function got its share
    assert report["returned"] > FUZZ_CASES // 5 and report["raised"] > FUZZ_CASES // 5


# ----------------------------------------------------------------------------- targeted
def f32(*shape):
    return np.ones(shape, np.float32)


def ln_fwd(x):
    return C.layer_norm_forward(x, None, None, 1e-5)


def ce_fwd(x):
    rows = x.shape[0] if isinstance(x, np.ndarray) and x.ndim else 1
    return C.cross_entropy_forward(x, np.zeros(rows, np.int64), -100, 0.0)


def attn_fwd(x):
    return C.attention_forward(x, x, x)


# Functions of one float array (the others fixed and valid), for dtype and layout checks.
UNARY = {
    "matmul": lambda x: C.matmul(x, x),
    "gelu_forward": C.gelu_forward,
    "gelu_backward": lambda x: C.gelu_backward(x, x),
    "layer_norm_forward": ln_fwd,
    "cross_entropy_forward": ce_fwd,
    "attention_forward": attn_fwd,
    "adamw_step": lambda x: C.adamw_step([x], [x], [x], [x], None, [1.0], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8,
                                         weight_decay=0.0, decoupled=True, maximize=False),
}


def raises_naming(op, exc, fn, *args, **kw):
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    assert op in str(info.value), f"{op}: message does not name the op: {info.value}"
    return str(info.value)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.bool_, object, np.complex64])
@pytest.mark.parametrize("op", sorted(UNARY))
def test_wrong_dtypes_raise_type_error_naming_the_op(op, dtype):
    raises_naming(op, TypeError, UNARY[op], np.ones((2, 3, 3), dtype))


@pytest.mark.parametrize("bad", [None, [[[1.0]]], 1.5, "x"])
@pytest.mark.parametrize("op", sorted(UNARY))
def test_none_lists_and_scalars_raise_type_error_naming_the_op(op, bad):
    raises_naming(op, TypeError, UNARY[op], bad)


def test_wrong_ranks_and_mismatched_sizes():
    raises_naming("matmul", ValueError, C.matmul, f32(3, 3), f32(3, 3))
    raises_naming("matmul", ValueError, C.matmul, f32(1, 2, 3), f32(1, 4, 5))
    raises_naming("matmul", ValueError, C.matmul, f32(2, 2, 3), f32(3, 3, 5))
    raises_naming("gelu_backward", ValueError, C.gelu_backward, f32(2, 3), f32(3, 2))
    raises_naming("layer_norm_forward", ValueError, C.layer_norm_forward, f32(), None, None, 1e-5)
    raises_naming("layer_norm_forward", ValueError, C.layer_norm_forward, f32(2, 3), f32(4), None, 1e-5)
    raises_naming("layer_norm_backward", ValueError, C.layer_norm_backward, f32(2, 3), f32(2, 3), None, f32(3), f32(2), True)
    raises_naming("cross_entropy_forward", ValueError, C.cross_entropy_forward, f32(4), np.zeros(4, np.int64), -1, 0.0)
    raises_naming("cross_entropy_forward", ValueError, C.cross_entropy_forward, f32(4, 2), np.zeros(3, np.int64), -1, 0.0)
    raises_naming("cross_entropy_backward", ValueError, C.cross_entropy_backward,
                  f32(3), f32(4, 2), np.zeros(4, np.int64), f32(4), -1, 0.0)
    raises_naming("attention_forward", ValueError, C.attention_forward, f32(3), f32(3), f32(3))
    raises_naming("attention_forward", ValueError, C.attention_forward, f32(2, 3, 4), f32(2, 5, 3), f32(2, 5, 4))
    raises_naming("attention_forward", ValueError, C.attention_forward, f32(1, 3, 4), f32(1, 5, 4), f32(1, 5, 4),
                  mask=np.ones((1, 3, 4), bool))
    raises_naming("attention_backward", ValueError, C.attention_backward,
                  f32(1, 3, 2), f32(1, 3, 4), f32(1, 5, 4), f32(1, 5, 4), f32(1, 3, 4), f32(1, 3))
    raises_naming("adamw_step", ValueError, C.adamw_step, [f32(3)], [f32(4)], [f32(3)], [f32(3)], None, [1.0],
                  lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False)
    raises_naming("adamw_step", ValueError, C.adamw_step, [f32(3)], [f32(3)], [], [f32(3)], None, [1.0],
                  lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False)


def test_out_of_range_targets_raise_index_error():
    x = np.zeros((2, 3))
    for bad in (3, -1, 2**62):
        msg = raises_naming("cross_entropy_forward", IndexError, C.cross_entropy_forward,
                            x, np.array([0, bad], np.int64), -100, 0.0)
        assert str(bad) in msg


def test_zero_sizes_give_empty_or_exact_results():
    assert C.matmul(f32(2, 0, 3), f32(2, 3, 4)).shape == (2, 0, 4)
    np.testing.assert_array_equal(C.matmul(f32(2, 3, 0), f32(2, 0, 4)), np.zeros((2, 3, 4)))
    assert C.gelu_forward(np.zeros((0, 5))).shape == (0, 5)
    out, mean, rstd = C.layer_norm_forward(np.zeros((0, 4)), None, None, 1e-5)
    assert out.shape == (0, 4) and mean.shape == rstd.shape == (0,)
    losses, lse = C.cross_entropy_forward(np.zeros((0, 3)), np.zeros(0, np.int64), -100, 0.0)
    assert losses.shape == lse.shape == (0,)
    out, lse = C.attention_forward(f32(1, 2, 3), f32(1, 0, 3), f32(1, 0, 4))  # no keys: an empty sum
    np.testing.assert_array_equal(out, np.zeros((1, 2, 4)))
    np.testing.assert_array_equal(lse, np.full((1, 2), -np.inf))
    C.adamw_step([], [], [], [], None, [], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0,
                 decoupled=True, maximize=False)


def test_strided_and_negative_stride_inputs():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 5, 8))
    b = rng.standard_normal((2, 8, 6))
    for av, bv in [(a[:, ::-1], b[:, :, ::-1]), (a[::-1, :, ::2], b[::-1, ::2]), (np.swapaxes(np.swapaxes(a, 1, 2).copy(), 1, 2), b)]:
        np.testing.assert_allclose(C.matmul(av, bv), np.matmul(av, bv), rtol=1e-12, atol=1e-12)
    q = rng.standard_normal((2, 4, 3))[::-1]  # negative stride on a leading dim: accepted
    out, _ = C.attention_forward(q, q, q)
    s = q @ np.swapaxes(q, -1, -2)
    p = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(out, (p / p.sum(-1, keepdims=True)) @ q, rtol=1e-12, atol=1e-12)
    for op, fn in [("gelu_forward", C.gelu_forward), ("layer_norm_forward", ln_fwd), ("cross_entropy_forward", ce_fwd)]:
        assert "contiguous" in raises_naming(op, ValueError, fn, a[0, ::-1])
        assert "contiguous" in raises_naming(op, ValueError, fn, a[0].T)
    raises_naming("attention_forward", ValueError, attn_fwd, a[:, :, ::-1])  # the last dim needs unit stride


def test_read_only_inputs_are_fine_read_only_outputs_are_refused():
    x = np.linspace(-2, 2, 6)
    x.flags.writeable = False
    np.testing.assert_allclose(C.gelu_forward(x), 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))), rtol=1e-12)
    for slot in range(4):
        arrays = [np.ones(3), np.ones(3), np.zeros(3), np.zeros(3)]
        arrays[slot].flags.writeable = False
        call = lambda: C.adamw_step(*[[a] for a in arrays], None, [1.0], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8,  # noqa: E731
                                    weight_decay=0.0, decoupled=True, maximize=False)
        if slot == 1:  # grads are only read
            call()
        else:
            assert "read-only" in raises_naming("adamw_step", ValueError, call)
            np.testing.assert_array_equal(arrays[0], 1.0)  # refused before anything was written


HUGE = 1 << 40


def huge(*shape):
    """A stride-0 view of one float32 zero with a huge logical shape: no memory behind it."""
    return np.broadcast_to(np.zeros((), np.float32), shape)


@pytest.mark.parametrize("op,call", [
    ("matmul", lambda: C.matmul(huge(1, HUGE, 1), huge(1, 1, HUGE))),
    ("matmul", lambda: C.matmul(huge(HUGE, 1, 1), huge(HUGE, 1, 1))),
    ("matmul", lambda: C.matmul(huge(1 << 30, 1 << 30, 1), huge(1 << 30, 1, 1 << 30))),  # size overflows
    ("attention_forward", lambda: C.attention_forward(*[huge(HUGE, 1, 1)] * 3)),
    ("attention_forward", lambda: C.attention_forward(*[huge(HUGE, 2, 0)] * 3)),
    ("attention_backward", lambda: C.attention_backward(*[huge(1 << 20, 1 << 20, 0)] * 5, huge(1 << 20, 1 << 20))),
    ("layer_norm_forward", lambda: C.layer_norm_forward(huge(HUGE, 0), None, None, 1e-5)),
], ids=["matmul_out", "matmul_batch", "matmul_overflow", "attention_batch", "attention_empty", "attention_scratch",
        "layer_norm_rows"])
def test_huge_logical_shapes_raise_naming_the_op(op, call):
    """A clear MemoryError/ValueError naming the op (NumPy's own message kept), never a crash
    and never a bare "std::bad_alloc"."""
    msg = raises_naming(op, (MemoryError, ValueError), call)
    assert "bad_alloc" not in msg


@pytest.mark.parametrize("n", [0, -1, 257, 100_000, 2**40])
def test_set_num_threads_refuses_absurd_counts(n):
    """100000 threads used to segfault in OpenMP's thread creation on the next kernel call."""
    before = C.get_num_threads()
    msg = raises_naming("set_num_threads", ValueError, C.set_num_threads, n)
    assert str(n) in msg and C.get_num_threads() == before


@pytest.mark.parametrize("bad", [2**64, 1.5, None, "2"])
def test_set_num_threads_wrong_types(bad):
    raises_naming("set_num_threads", TypeError, C.set_num_threads, bad)


def test_bad_scalar_arguments():
    x = np.ones((2, 3))
    raises_naming("layer_norm_forward", ValueError, C.layer_norm_forward, x, None, None, -1e-5)
    raises_naming("layer_norm_forward", ValueError, C.layer_norm_forward, x, None, None, float("nan"))
    for ls in (float("nan"), -0.1, 1.5):
        raises_naming("cross_entropy_forward", ValueError, C.cross_entropy_forward, x, np.zeros(2, np.int64), -100, ls)
    raises_naming("cross_entropy_forward", TypeError, C.cross_entropy_forward, x, np.zeros(2, np.int64), 2**70, 0.0)
    for name in ("lr", "beta1", "beta2", "eps", "weight_decay"):
        for v in (float("nan"), float("inf")):
            kw = dict(lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0) | {name: v}
            msg = raises_naming("adamw_step", ValueError, C.adamw_step, [np.ones(2)], [np.ones(2)], [np.zeros(2)],
                                [np.zeros(2)], None, [1.0], decoupled=True, maximize=False, **kw)
            assert name in msg
    for step in (0.0, -1.0, float("nan")):
        raises_naming("adamw_step", ValueError, C.adamw_step, [np.ones(2)], [np.ones(2)], [np.zeros(2)], [np.zeros(2)],
                      None, [step], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, decoupled=True,
                      maximize=False)
    raises_naming("gelu_forward", ValueError, C.gelu_forward, x, "TANH")
    raises_naming("set_isa", ValueError, C.set_isa, "neon")
    raises_naming("fma_loop", ValueError, C.fma_loop, -1)
    raises_naming("fma_loop", TypeError, C.fma_loop, 2**64)


def test_non_finite_values_propagate_where_numpy_puts_them():
    x = np.array([[0.5, np.nan, 1.0], [np.inf, -1.0, 2.0], [0.1, 0.2, 0.3]])
    g = C.gelu_forward(x)
    assert np.isnan(g[0, 1]) and g[1, 0] == np.inf and np.isfinite(np.delete(g.ravel(), [1, 3])).all()
    m = C.matmul(x[None], np.eye(3)[None])[0]
    assert np.isnan(m[0]).any() and np.isfinite(m[2]).all()
    out, mean, rstd = C.layer_norm_forward(x, None, None, 1e-5)
    assert np.isnan(out[:2]).all() and np.isfinite(out[2]).all()
    losses, lse = C.cross_entropy_forward(x, np.array([0, 1, 2], np.int64), -100, 0.0)
    assert np.isnan(losses[0]) and np.isfinite(losses[2])
