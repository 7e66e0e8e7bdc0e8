"""The op table (tests/op_table.py) on CUDA: forward against the NumPy float64 references,
gradients against central differences of those references, float32 and float64.

Each test runs on two devices:
* "gpu": the real pyzen._cuda kernels; skipped where pyzen.cuda.is_available() is False;
* "emulated": pyzen._cuda's kernels swapped for tests/cuda_emulator.py (NumPy), so the
  CUDA backend's Python layer (views, broadcasting, promotion, indexing, autograd on
  device tensors) is checked on every machine. It proves nothing about the kernels.
"""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
from conftest import assert_np_close, rng_for, to_np, tol
from op_table import TABLE, as_tuple, float_arg_positions, make_inputs, out_kinds, view_np, view_pz, wants_grad


KIND_DTYPE = {"bool": pyzen.bool, "int64": pyzen.int64}
PUBLIC = set(getattr(getattr(pyzen, "ops", None), "__all__", []) or [])
SPECS = [s for s in TABLE if s.method_only or s.name in PUBLIC]
CASES = [(s, c) for s in SPECS for c in s.cases]
IDS = [f"{s.id}-{c.id}" for s, c in CASES]
GRAD_CASES = [(s, c) for s, c in CASES if wants_grad(s, c) and not any(0 in a.shape for a in c.args)]
GRAD_IDS = [f"{s.id}-{c.id}" for s, c in GRAD_CASES]


def _device_inputs(case, dtype, rng, device, requires_grad=False):
    """The op table's inputs, copied to `device` (leaves there), and the NumPy bases."""
    leaves, refs = make_inputs(case, dtype, rng)
    bases = [to_np(t) for t in leaves]
    on_device = [pyzen.tensor(b, dtype=t.dtype, device=device, requires_grad=requires_grad and a.kind == "float")
                 for b, t, a in zip(bases, leaves, case.args)]
    return on_device, refs, bases


def _call(spec, case, leaves):
    return spec.fn(*[view_pz(t, a.view) for t, a in zip(leaves, case.args)])


@pytest.mark.parametrize("dtype", [pyzen.float32, pyzen.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("spec,case", CASES, ids=IDS)
def test_forward(device, spec, case, dtype):
    leaves, refs, _ = _device_inputs(case, dtype, rng_for(spec.id, case.id), device)
    out = as_tuple(_call(spec, case, leaves))
    with np.errstate(all="ignore"):
        expected = as_tuple(spec.ref(*refs))
    rtol, atol = tol(dtype, spec.rtol32, spec.atol32)
    for k, (o, e, kind) in enumerate(zip(out, expected, out_kinds(spec, len(out)))):
        e = np.asarray(e)
        assert o.device.type == "cuda", f"{spec.id} output {k} is on {o.device}"
        assert o.shape == e.shape, f"{spec.id} output {k}: shape {tuple(o.shape)} != {e.shape}"
        assert o.dtype == (dtype if kind == "same" else KIND_DTYPE[kind]), f"{spec.id} output {k}: dtype {o.dtype}"
        if kind == "same":
            assert_np_close(to_np(o), e, rtol, atol, what=f"{spec.id}[{case.id}] output {k}")
        else:
            np.testing.assert_array_equal(to_np(o), e.astype(to_np(o).dtype), err_msg=f"{spec.id}[{case.id}]")


def _numeric_grad(spec, case, bases, pos, weights, eps=1e-6):
    """d(sum_k weights[k] * ref_k(inputs))/d(input i) by central differences on the NumPy ref."""

    def loss(args):
        refs = [view_np(b, a.view) for b, a in zip(args, case.args)]
        with np.errstate(all="ignore"):
            outs = as_tuple(spec.ref(*refs))
        return sum(float(np.sum(np.asarray(o, np.float64) * w)) for o, w in zip(outs, weights) if w is not None)

    grads = []
    for i in pos:
        args = [b.astype(np.float64) if a.kind == "float" else b for b, a in zip(bases, case.args)]
        g = np.zeros(args[i].shape)
        flat, gflat = args[i].reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + eps
            up = loss(args)
            flat[j] = keep - eps
            down = loss(args)
            flat[j] = keep
            gflat[j] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("spec,case", GRAD_CASES, ids=GRAD_IDS)
def test_gradient(device, spec, case):
    rng = rng_for(spec.id, case.id, "grad")
    leaves, _, bases = _device_inputs(case, pyzen.float64, rng, device, requires_grad=True)
    outs = as_tuple(_call(spec, case, leaves))
    kinds = out_kinds(spec, len(outs))
    weights = [rng.standard_normal(tuple(o.shape)) if k == "same" else None for o, k in zip(outs, kinds)]
    total = None
    for o, w in zip(outs, weights):
        if w is not None:
            term = (o * pyzen.tensor(w, dtype=pyzen.float64, device=device)).sum()
            total = term if total is None else total + term
    total.backward()
    pos = float_arg_positions(case)
    for i, expected in zip(pos, _numeric_grad(spec, case, bases, pos, weights)):
        g = leaves[i].grad
        assert g is not None and g.device.type == "cuda", f"{spec.id}: no CUDA grad for input {i}"
        assert_np_close(to_np(g), expected, 1e-3, 1e-5, what=f"{spec.id}[{case.id}] grad of input {i}")
