"""Property-based fuzzing of every op in tests/op_table.py: random shapes and memory layouts,
compared against the table's NumPy float64 references.

test_ops.py runs the table's fixed cases; here hypothesis draws, for every table entry:

* shapes: each case's shapes with their sizes remapped at random (sizes that are equal in
  the case stay equal, so matmul's inner sizes and layer norm's weight keep matching;
  new sizes include 0 and 1), and for broadcasting entries shapes from
  hypothesis.extra.numpy.mutually_broadcastable_shapes;
* layouts: contiguous, transposed, strided slice, negative strides (a flip of the base and
  base[::-1]) and a view at an offset, per input;
* dtype: float32 or float64; values from the table's domain (Arg lo/hi/gen/kinks).

Gradients: backward gives each input a gradient of its shape and dtype, and gradcheck
(float64) passes on small random shapes. PYZEN_FUZZ_EXAMPLES=<n> sets the total number of
examples per test (default: a few per table entry, a few seconds in all).
"""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import pyzen
from conftest import assert_np_close, fuzz_examples, to_np, tol
from op_table import REQUIRED_OPS, TABLE, Case, as_tuple, out_kinds, wants_grad

PUBLIC = set(pyzen.ops.__all__)
SPECS = [s for s in TABLE if s.method_only or s.name in PUBLIC or s.name in REQUIRED_OPS]
GRAD_SPECS = [s for s in SPECS if any(wants_grad(s, c) for c in s.cases)]
KIND_DTYPE = {"bool": pyzen.bool, "int64": pyzen.int64}

# Entries whose NumPy reference or arguments are written for the case's exact sizes (fixed
# slices and split sizes, k of topk, target shapes of reshape/view/expand): they get random
# layouts, dtypes and values, but keep their sizes.
FIXED_SIZES = {"split", "split-sections", "split-lastdim", "chunk", "chunk-dim0", "topk", "Tensor.expand-minus1",
               "reshape", "reshape-infer", "Tensor.view", "Tensor.view-infer", "unflatten", "squeeze-dim_noop"}
# Views that need a contiguous input (RuntimeError otherwise, as in PyTorch).
CONTIGUOUS_ONLY = {"Tensor.view", "Tensor.view-infer"}

EXAMPLES = fuzz_examples(2 * len(SPECS))
PER_SPEC = max(1, math.ceil(EXAMPLES / len(SPECS)))
GRAD_PER_SPEC = max(1, math.ceil(fuzz_examples(len(GRAD_SPECS)) / len(GRAD_SPECS)))


def fuzz_settings(n):
    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                           HealthCheck.too_slow])


# ----------------------------------------------------------------------------- drawing
LAYOUTS = ["C", "T", "slice", "flip", "neg", "offset"]


def store_and_view(v: np.ndarray, layout: str):
    """(storage array, function of the pyzen leaf giving a view whose values are ``v``)."""
    if layout == "T" and v.ndim >= 2:
        return np.swapaxes(v, -1, -2).copy(), lambda t: t.transpose(-2, -1)
    if layout == "slice" and v.ndim >= 1:
        s = np.zeros(v.shape[:-1] + (2 * v.shape[-1],), v.dtype)
        s[..., ::2] = v
        return s, lambda t: t[..., ::2]
    if layout == "flip" and v.ndim >= 1:
        return np.flip(v, 0).copy(), lambda t: pyzen.flip(t, (0,))
    if layout == "neg" and v.ndim >= 1:
        return v[::-1].copy(), lambda t: t[::-1]
    if layout == "offset" and v.ndim >= 1:
        return np.concatenate([v[:1] if len(v) else np.zeros((1,) + v.shape[1:], v.dtype), v]), lambda t: t[1:]
    return v, lambda t: t


def broadcasts_into_first(spec) -> bool:
    """Whether, in every table case, the other inputs broadcast to the first one's shape."""
    return all(np.broadcast_shapes(*(a.shape for a in c.args)) == c.args[0].shape for c in spec.cases)


@st.composite
def size_map(draw, case: Case) -> dict:
    """New sizes (0 to 5) for the case's sizes > 1, int inputs' bounds included (they index a
    dim). The map keeps order, so equal sizes stay equal and smaller ones no larger: gather's
    index stays within its input, matmul's inner sizes keep matching. Sizes 0 and 1 stay (1
    is broadcasting), so where a case has a 1 the others stay >= 1."""
    sizes = sorted({d for a in case.args for d in a.shape if d > 1} |
                   {int(a.hi) for a in case.args if a.kind == "int" and a.hi > 1})
    low = 1 if any(d == 1 for a in case.args for d in a.shape) else 0
    new = draw(st.lists(st.integers(low, 5), min_size=len(sizes), max_size=len(sizes)), label="sizes")
    return dict(zip(sizes, sorted(new)))


@st.composite
def drawn_case(draw, spec, small=False) -> tuple:
    """(case with new shapes, layouts per input, dtype) for one table entry."""
    case = draw(st.sampled_from([c for c in spec.cases if not small or wants_grad(spec, c)]), label="case")
    args = list(case.args)
    if any(c.id.startswith("bcast") for c in spec.cases) and draw(st.booleans(), label="broadcast"):
        drawn = draw(mutually_broadcastable_shapes(num_shapes=len(args), min_dims=0, max_dims=3, min_side=0,
                                                   max_side=3 if small else 4), label="shapes")
        shapes = list(drawn.input_shapes)
        if broadcasts_into_first(spec):  # masked_fill: the mask broadcasts to the input, not beyond
            shapes[0] = drawn.result_shape
        args = [dataclasses.replace(a, shape=s, view=None) for a, s in zip(args, shapes)]
    elif spec.id not in FIXED_SIZES:
        m = draw(size_map(case), label="sizes")
        if small:
            m = {d: min(n, 3) for d, n in m.items()}
        args = [dataclasses.replace(a, shape=tuple(m.get(d, d) for d in a.shape), view=None,
                                    hi=m.get(int(a.hi), a.hi) if a.kind == "int" else a.hi) for a in args]
    layouts = [a.view or ("C" if spec.id in CONTIGUOUS_ONLY else draw(st.sampled_from(LAYOUTS), label=f"layout {i}"))
               for i, a in enumerate(args)]
    dtype = pyzen.float64 if small else draw(st.sampled_from([pyzen.float32, pyzen.float64]), label="dtype")
    return Case(case.id, tuple(dataclasses.replace(a, view=None) for a in args), case.grad), layouts, dtype


def build(case: Case, layouts, dtype, seed: int, requires_grad=False):
    """(pyzen leaves, views: leaf -> op input, op inputs, NumPy float64 references)."""
    rng = np.random.default_rng(seed)
    np_float = np.float32 if dtype == pyzen.float32 else np.float64
    leaves, views, inputs, refs = [], [], [], []
    for a, layout in zip(case.args, layouts):
        if a.kind == "int" and a.hi <= a.lo and 0 not in a.shape:
            assume(False)  # indices into an empty dim
        v = a.generate(rng) if not (a.kind == "int" and 0 in a.shape) else np.zeros(a.shape, np.int64)
        if a.kind == "float":
            v = v.astype(np_float)
        store, view = store_and_view(v, layout)
        pz_dtype = {"float": dtype, "bool": pyzen.bool, "int": pyzen.int64}[a.kind]
        leaf = pyzen.tensor(store, dtype=pz_dtype, requires_grad=requires_grad and a.kind == "float")
        leaves.append(leaf)
        views.append(view)
        inputs.append(view(leaf))
        refs.append(v.astype(np.float64) if a.kind == "float" else v)
    return leaves, views, inputs, refs


def reference(spec, refs):
    """The NumPy reference, or None where it refuses these shapes (then nothing is compared)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # e.g. the mean of an empty slice
        try:
            return as_tuple(spec.ref(*refs))
        except (ValueError, IndexError, TypeError, ZeroDivisionError):
            return None


def describe(spec, case, layouts, dtype) -> str:
    return f"{spec.id}[{case.id}] shapes={[a.shape for a in case.args]} layouts={layouts} dtype={dtype}"


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
@fuzz_settings(PER_SPEC)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_forward_random_shapes_and_layouts(spec, data, seed):
    case, layouts, dtype = data.draw(drawn_case(spec))
    _, _, inputs, refs = build(case, layouts, dtype, seed)
    expected = reference(spec, refs)
    assume(expected is not None and all(np.all(np.isfinite(np.asarray(e, dtype=float))) for e in expected))
    what = describe(spec, case, layouts, dtype)
    before = [to_np(t).copy() for t in inputs]
    out = as_tuple(spec.fn(*inputs))
    for k, (t, b) in enumerate(zip(inputs, before)):
        np.testing.assert_array_equal(to_np(t), b, err_msg=f"{what}: input {k} was modified")
    assert len(out) == len(expected), f"{what}: {len(out)} outputs, expected {len(expected)}"
    rtol, atol = tol(dtype, spec.rtol32, spec.atol32)
    for k, (o, e, kind) in enumerate(zip(out, expected, out_kinds(spec, len(out)))):
        e = np.asarray(e)
        assert o.shape == e.shape, f"{what} output {k}: shape {tuple(o.shape)} != {e.shape}"
        want = dtype if kind == "same" else KIND_DTYPE[kind]
        assert o.dtype == want, f"{what} output {k}: dtype {o.dtype} != {want}"
        if kind == "same":
            scale = max(1.0, float(np.abs(e).max())) if e.size else 1.0
            assert_np_close(to_np(o), e, rtol, atol * scale, what=f"{what} output {k}")
        else:
            np.testing.assert_array_equal(to_np(o), e.astype(to_np(o).dtype), err_msg=what)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("spec", GRAD_SPECS, ids=[s.id for s in GRAD_SPECS])
@fuzz_settings(GRAD_PER_SPEC)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), f32=st.booleans())
def test_gradients_on_random_shapes(spec, data, seed, f32):
    """float32: backward gives every float input a gradient of its shape and dtype.
    float64: gradcheck on small shapes (every size <= 3)."""
    case, layouts, _ = data.draw(drawn_case(spec, small=True))
    dtype = pyzen.float32 if f32 else pyzen.float64
    leaves, views, inputs, refs = build(case, layouts, dtype, seed, requires_grad=True)
    expected = reference(spec, refs)  # a non-finite value (var over n <= correction) has no useful gradient
    assume(expected is not None and all(np.all(np.isfinite(np.asarray(e, dtype=float))) for e in expected))
    pos = [i for i, a in enumerate(case.args) if a.kind == "float"]
    outs = [o for o, k in zip(as_tuple(spec.fn(*inputs)), out_kinds(spec, 99)) if k == "same"]
    what = describe(spec, case, layouts, dtype)
    total = outs[0].sum()
    for o in outs[1:]:
        total = total + o.sum()
    total.backward()
    for i in pos:
        g = leaves[i].grad
        assert g is not None, f"{what}: no gradient for input {i}"
        assert g.shape == leaves[i].shape and g.dtype == dtype, f"{what}: grad {g.shape} {g.dtype} for input {i}"
    if f32 or any(leaves[i].numel() == 0 for i in pos) or any(o.numel() == 0 for o in outs):
        return
    def fn(*xs):
        full = list(inputs)
        for i, x in zip(pos, xs):
            full[i] = views[i](x)
        return [o for o, k in zip(as_tuple(spec.fn(*full)), out_kinds(spec, 99)) if k == "same"][0]

    assert pyzen.autograd.gradcheck(fn, tuple(leaves[i] for i in pos), eps=1e-6, atol=1e-5, rtol=1e-3) is True, what
