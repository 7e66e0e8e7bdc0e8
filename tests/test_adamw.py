"""adamw_step: pyzen._C.adamw_step (through the CPU backend) on every ISA against a NumPy
float64 Adam/AdamW written here: several steps, amsgrad, maximize, weight decay both ways,
per-parameter step counts, mixed dtypes; the first step's closed form; zero and huge
gradients; thread-count independence; bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pyzen._C as C
from pyzen.backend import cpu
from conftest import assert_np_close, rng_for

SHAPES = [(), (1,), (7,), (8,), (9,), (3, 5), (33,), (100,), (0,), (1023,)]


def ref_step(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize):
    """One float64 Adam/AdamW step (PyTorch's formulas), returning new (p, m, v, vmax)."""
    g = -g if maximize else g
    if weight_decay and decoupled:
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    if vmax is not None:
        vmax = np.maximum(vmax, v)
    denom = np.sqrt(v if vmax is None else vmax) / math.sqrt(1 - beta2**step) + eps
    return p - lr / (1 - beta1**step) * m / denom, m, v, vmax


CONFIGS = {
    "adamw": dict(weight_decay=0.1, decoupled=True, maximize=False, amsgrad=False),
    "adam_l2": dict(weight_decay=0.1, decoupled=False, maximize=False, amsgrad=False),
    "adam_plain": dict(weight_decay=0.0, decoupled=False, maximize=False, amsgrad=False),
    "adamw_amsgrad_maximize": dict(weight_decay=0.05, decoupled=True, maximize=True, amsgrad=True),
    "adam_l2_amsgrad": dict(weight_decay=0.05, decoupled=False, maximize=False, amsgrad=True),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_several_steps_match_reference(isa, config):
    cfg = CONFIGS[config]
    rng = rng_for("adamw", isa, config)
    hyper = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=cfg["weight_decay"],
                 decoupled=cfg["decoupled"], maximize=cfg["maximize"])
    # Mixed dtypes in one call; parameter i starts at step i % 3 (per-parameter bias correction).
    dtypes = [np.float32 if i % 2 else np.float64 for i in range(len(SHAPES))]
    params = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, dtypes)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    vmax = [np.zeros_like(p) for p in params] if cfg["amsgrad"] else None
    ref = [[p.astype(np.float64), np.zeros(p.shape), np.zeros(p.shape), np.zeros(p.shape) if vmax else None] for p in params]
    steps = [i % 3 for i in range(len(params))]
    for _ in range(4):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
        steps = [s + 1 for s in steps]
        cpu.adamw_step(params, grads, m, v, vmax, steps, beta1=hyper["beta1"], beta2=hyper["beta2"], lr=hyper["lr"],
                       eps=hyper["eps"], weight_decay=hyper["weight_decay"], decoupled=hyper["decoupled"], maximize=hyper["maximize"])
        for i, g in enumerate(grads):
            p64, m64, v64, vmax64 = ref[i]
            ref[i] = list(ref_step(p64, g.astype(np.float64), m64, v64, vmax64, steps[i], **hyper))
    for i, p in enumerate(params):
        rtol, atol = (1e-12, 1e-14) if p.dtype == np.float64 else (2e-6, 2e-6)
        what = f"param {i} shape {p.shape} {p.dtype}"
        assert p.dtype == dtypes[i] and m[i].dtype == dtypes[i]
        assert_np_close(p, ref[i][0], rtol, atol, "p " + what)
        assert_np_close(m[i], ref[i][1], rtol, atol, "exp_avg " + what)
        assert_np_close(v[i], ref[i][2], rtol, atol, "exp_avg_sq " + what)
        if vmax is not None:
            assert_np_close(vmax[i], ref[i][3], rtol, atol, "max_exp_avg_sq " + what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_first_step_closed_form(isa, dtype):
    """From zero state, step 1 moves p by -lr * g / (|g| + eps) after the decay."""
    rng = rng_for("adamw-first", isa, dtype)
    p0 = rng.standard_normal(1000).astype(dtype)
    g = rng.standard_normal(1000).astype(dtype)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    lr, wd, eps = 1e-3, 0.01, 1e-8
    cpu.adamw_step([p], [g], [m], [v], None, [1], lr=lr, beta1=0.9, beta2=0.999, eps=eps, weight_decay=wd,
                   decoupled=True, maximize=False)
    g64 = g.astype(np.float64)
    want = p0.astype(np.float64) * (1 - lr * wd) - lr * g64 / (np.abs(g64) + eps)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert_np_close(p, want, rtol, rtol, "p")
    assert_np_close(m, 0.1 * g64, rtol, 0, "exp_avg")
    assert_np_close(v, 0.001 * g64 * g64, rtol * 10, 0, "exp_avg_sq")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_zero_and_huge_gradients(isa, dtype):
    p0 = np.linspace(-1, 1, 37).astype(dtype)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    cpu.adamw_step([p], [np.zeros_like(p0)], [m], [v], None, [1], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                   weight_decay=0.0, decoupled=True, maximize=False)
    assert np.array_equal(p, p0) and not m.any() and not v.any()
    huge = dtype(1e15 if dtype == np.float32 else 1e150)
    g = np.where(np.arange(37) % 2 == 0, huge, -huge).astype(dtype)
    cpu.adamw_step([p], [g], [m], [v], None, [1], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                   weight_decay=0.0, decoupled=True, maximize=False)
    assert np.isfinite(p).all() and np.isfinite(v).all()
    assert_np_close(p, p0.astype(np.float64) - 0.1 * np.sign(g.astype(np.float64)), 1e-5, 1e-6, "p")


def test_same_bits_for_any_thread_count(isa):
    rng = rng_for("adamw-threads", isa)
    start = [rng.standard_normal(n).astype(np.float32) for n in (70001, 3, 40000)]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in start]
    before = C.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            C.set_num_threads(n)
            p = [x.copy() for x in start]
            m = [np.full_like(x, 0.1) for x in start]
            v = [np.full_like(x, 0.2) for x in start]
            cpu.adamw_step(p, grads, m, v, None, [5, 5, 5], lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                           weight_decay=0.01, decoupled=True, maximize=False)
            results.append(p + m + v)
    finally:
        C.set_num_threads(before)
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other))


def test_bad_inputs_raise():
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False)
    p = np.zeros(4, np.float32)
    z = np.zeros(4, np.float32)

    def call(params=None, grads=None, m=None, v=None, vmax=None, steps=None, **over):
        C.adamw_step(params or [p], grads or [z], m or [z.copy()], v or [z.copy()], vmax, steps or [1], **{**kw, **over})

    strided = np.zeros(8, np.float32)[::2]
    with pytest.raises(ValueError, match=r"adamw_step: params\[0\] must be C-contiguous"):
        call(params=[strided])
    with pytest.raises(ValueError, match=r"adamw_step: exp_avg_sqs\[0\] must be C-contiguous"):
        call(v=[strided])
    with pytest.raises(ValueError, match=r"adamw_step: params\[0\] must be C-contiguous"):  # through the backend too
        cpu.adamw_step([strided], [z], [z.copy()], [z.copy()], None, [1], **kw)
    with pytest.raises(TypeError, match=r"adamw_step: grads\[0\] has dtype float64, expected float32"):
        call(grads=[np.zeros(4)])
    with pytest.raises(ValueError, match=r"adamw_step: exp_avgs\[0\] has shape \(5,\), expected \(4,\)"):
        call(m=[np.zeros(5, np.float32)])
    with pytest.raises(TypeError, match=r"adamw_step: params\[0\] must be float32 or float64, got int64"):
        call(params=[np.zeros(4, np.int64)])
    with pytest.raises(ValueError, match="adamw_step: grads has 2 entries, expected 1"):
        call(grads=[z, z])
    with pytest.raises(ValueError, match=r"adamw_step: steps\[0\] must be >= 1"):
        call(steps=[0])
    with pytest.raises(TypeError, match=r"adamw_step: exp_avgs\[0\] must be a NumPy array, got list"):
        call(m=[[0.0] * 4])
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"adamw_step: params\[0\] is read-only"):
        call(params=[ro])
    with pytest.raises(ValueError, match="adamw_step: lr must be finite"):
        call(lr=float("nan"))
    assert not p.any()  # nothing was written by the failed calls


def test_arrays_updated_in_place_must_not_share_memory():
    kw = dict(lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False)
    p, g = np.ones(4), np.ones(4)
    with pytest.raises(ValueError, match=r"exp_avgs\[0\] and params\[0\] share memory"):
        C.adamw_step([p], [g], [p], [np.zeros(4)], None, [1.0], **kw)
    base = np.ones(6)  # exp_avgs[1] overlaps the tail of params[0]
    with pytest.raises(ValueError, match=r"exp_avgs\[1\] and params\[0\] share memory"):
        C.adamw_step([base[:4], np.ones(2)], [np.ones(4), np.ones(2)], [np.zeros(4), base[3:5]],
                     [np.zeros(4), np.zeros(2)], None, [1.0, 1.0], **kw)
    np.testing.assert_array_equal(base, np.ones(6))  # refused before anything was written
    # Gradients are only read: one gradient array may serve several parameters.
    C.adamw_step([p, np.ones(4)], [g, g], [np.zeros(4), np.zeros(4)], [np.zeros(4), np.zeros(4)], None, [1.0, 1.0], **kw)
