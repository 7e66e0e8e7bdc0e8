"""Every op in tests/op_table.py: forward vs NumPy float64, dtype, shape, gradcheck."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import pyzen
from conftest import assert_np_close, rng_for, to_np, tol, unbroadcast
from op_table import (
    REQUIRED_OPS,
    TABLE,
    as_tuple,
    call,
    float_arg_positions,
    is_empty_case,
    make_inputs,
    out_kinds,
    wants_grad,
)

PUBLIC = set(getattr(getattr(pyzen, "ops", None), "__all__", []) or [])
TESTED = [s for s in TABLE if s.method_only or s.name in PUBLIC or s.name in REQUIRED_OPS]
CASES = [(s, c) for s in TESTED for c in s.cases]
IDS = [f"{s.id}-{c.id}" for s, c in CASES]
GRAD_CASES = [(s, c) for s, c in CASES if wants_grad(s, c)]
GRAD_IDS = [f"{s.id}-{c.id}" for s, c in GRAD_CASES]

KIND_DTYPE = {"bool": pyzen.bool, "int64": pyzen.int64}


# ------------------------------------------------------------------ coverage
def test_required_ops_are_public():
    missing = sorted(set(REQUIRED_OPS) - PUBLIC)
    assert not missing, f"names missing from pyzen.ops.__all__: {missing}"


def test_public_ops_are_top_level_functions():
    not_callable = sorted(n for n in PUBLIC if not callable(getattr(pyzen, n, None)))
    assert not not_callable, f"in pyzen.ops.__all__ but not callable as pyzen.<name>: {not_callable}"


def test_every_public_op_has_a_table_entry():
    covered = {s.name for s in TABLE}
    missing = sorted(PUBLIC - covered)
    assert not missing, f"ops in pyzen.ops.__all__ with no entry in tests/op_table.py: {missing}"


def test_every_float_op_is_gradchecked_somewhere():
    float_ops = {s.name for s in TESTED if s.out != "bool" and s.out != "int64"}
    checked = {s.name for s, c in GRAD_CASES if not is_empty_case(c)}
    missing = sorted(float_ops - checked)
    assert not missing, f"float ops with no gradcheck case: {missing}"


def test_every_required_op_has_view_empty_and_size1_cases():
    lacking = []
    for name in REQUIRED_OPS:
        cases = [c for s in TABLE if s.name == name for c in s.cases]
        if not any(a.view for c in cases for a in c.args):
            lacking.append(f"{name}: no non-contiguous case")
        if not any(0 in a.shape for c in cases for a in c.args):
            lacking.append(f"{name}: no size-0 case")
        if not any(a.shape == () or 1 in a.shape for c in cases for a in c.args):
            lacking.append(f"{name}: no 0-d or size-1 case")
    assert not lacking, "\n".join(lacking)


# ------------------------------------------------------------------ forward
def _check_forward(spec, case, dtype):
    rng = rng_for(spec.id, case.id)
    leaves, refs = make_inputs(case, dtype, rng)
    before = [to_np(t).copy() for t in leaves]
    out = as_tuple(call(spec, case, leaves))
    for k, (t, b) in enumerate(zip(leaves, before)):
        np.testing.assert_array_equal(to_np(t), b, err_msg=f"{spec.id}: input {k} was modified")
    with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
        expected = as_tuple(spec.ref(*refs))
    assert len(out) == len(expected), f"{spec.id}: {len(out)} outputs, expected {len(expected)}"
    kinds = out_kinds(spec, len(out))
    rtol, atol = tol(dtype, spec.rtol32, spec.atol32)
    for k, (o, e, kind) in enumerate(zip(out, expected, kinds)):
        assert isinstance(o, pyzen.Tensor), f"{spec.id} output {k} is {type(o)}"
        e = np.asarray(e)
        assert o.shape == e.shape, f"{spec.id} output {k}: shape {tuple(o.shape)} != {e.shape}"
        assert o.dim() == e.ndim
        want = dtype if kind == "same" else KIND_DTYPE[kind]
        assert o.dtype == want, f"{spec.id} output {k}: dtype {o.dtype} != {want}"
        got = to_np(o)
        if kind == "same":
            assert_np_close(got, e, rtol, atol, what=f"{spec.id}[{case.id}] output {k}")
        else:
            np.testing.assert_array_equal(got, e.astype(got.dtype), err_msg=f"{spec.id}[{case.id}]")


@pytest.mark.parametrize("spec,case", CASES, ids=IDS)
def test_forward_float32(spec, case):
    _check_forward(spec, case, pyzen.float32)


@pytest.mark.parametrize("spec,case", CASES, ids=IDS)
def test_forward_float64(spec, case):
    _check_forward(spec, case, pyzen.float64)


# ------------------------------------------------------------------ backward
@pytest.mark.parametrize("spec,case", GRAD_CASES, ids=GRAD_IDS)
def test_gradcheck(spec, case):
    _check_grad(spec, case)


def _check_grad(spec, case):
    rng = rng_for(spec.id, case.id)
    leaves, _ = make_inputs(case, pyzen.float64, rng, requires_grad=True)
    pos = float_arg_positions(case)
    diff = [leaves[i] for i in pos]

    def assemble(*xs):
        full = list(leaves)
        for i, x in zip(pos, xs):
            full[i] = x
        return full

    n_out = len(as_tuple(call(spec, case, leaves)))
    kinds = out_kinds(spec, n_out)
    if is_empty_case(case):
        # size-0: forward and backward run, and every input gets a grad of its own shape
        # (all zeros when the output is empty); non-empty outputs are gradchecked below.
        total, out_numel = None, 0
        for o, kind in zip(as_tuple(call(spec, case, leaves)), kinds):
            if kind == "same":
                s = o.sum()
                total = s if total is None else total + s
                out_numel += o.numel()
        total.backward()
        for x in diff:
            assert x.grad is not None, f"{spec.id}: no grad for a size-0 case input"
            assert x.grad.shape == x.shape
            assert x.grad.dtype == pyzen.float64
            if out_numel == 0:
                np.testing.assert_array_equal(to_np(x.grad), np.zeros(tuple(x.shape)))
            x.grad = None
        if out_numel == 0:
            return
    for k, kind in enumerate(kinds):
        if kind != "same":
            continue
        fn = (lambda k_: lambda *xs: as_tuple(call(spec, case, assemble(*xs)))[k_])(k)
        assert pyzen.autograd.gradcheck(fn, tuple(diff), eps=1e-6, atol=1e-5, rtol=1e-3) is True


@pytest.mark.parametrize("spec,case", GRAD_CASES[::7], ids=GRAD_IDS[::7])
def test_backward_of_float32_has_input_dtype_and_shape(spec, case):
    rng = rng_for(spec.id, case.id, "f32")
    leaves, _ = make_inputs(case, pyzen.float32, rng, requires_grad=True)
    outs = [o for o, k in zip(as_tuple(call(spec, case, leaves)), out_kinds(spec, 99)) if k == "same"]
    total = outs[0].sum()
    for o in outs[1:]:
        total = total + o.sum()
    total.backward()
    for i in float_arg_positions(case):
        g = leaves[i].grad
        assert g is not None and g.shape == leaves[i].shape and g.dtype == pyzen.float32


def test_table_views_are_really_non_contiguous():
    from op_table import view_pz

    base = pyzen.tensor(np.arange(12.0).reshape(4, 3))
    assert not view_pz(base, "T").is_contiguous()
    assert not view_pz(base, "slice").is_contiguous()
    assert view_pz(base, "T").shape == (3, 4) and view_pz(base, "slice").shape == (4, 2)


def test_softmax_with_masked_minus_inf_entries():
    """The attention-mask pattern: masked_fill(-inf) then softmax gives exact zeros, no NaN,
    no warnings, and finite gradients."""
    a = np.array([[0.5, -1.0, 2.0, 0.1], [1.0, 0.0, -0.5, 3.0]])
    mask = np.array([[False, True, False, True], [True, False, False, False]])
    x = pyzen.tensor(a, dtype=pyzen.float64, requires_grad=True)
    s = pyzen.softmax(pyzen.masked_fill(x, pyzen.tensor(mask), float("-inf")), dim=-1)
    e = np.where(mask, 0.0, np.exp(a - np.where(mask, -np.inf, a).max(-1, keepdims=True)))
    assert_np_close(to_np(s), e / e.sum(-1, keepdims=True), 1e-12, 1e-15)
    assert (to_np(s)[mask] == 0).all()
    w = pyzen.tensor(np.arange(8.0).reshape(2, 4), dtype=pyzen.float64)
    (s * w).sum().backward()
    g = to_np(x.grad)
    assert np.isfinite(g).all() and (g[mask] == 0).all()
    ls = pyzen.log_softmax(pyzen.masked_fill(x.detach(), pyzen.tensor(mask), float("-inf")), dim=-1)
    assert np.isneginf(to_np(ls)[mask]).all() and np.isfinite(to_np(ls)[~mask]).all()


# ------------------------------------------------------------------ every native ISA
@pytest.mark.parametrize("spec", TESTED, ids=[s.id for s in TESTED])
def test_op_on_every_isa(isa, spec):
    """The whole table again with the native kernels forced onto each instruction set."""
    for case in spec.cases:
        _check_forward(spec, case, pyzen.float32)
        _check_forward(spec, case, pyzen.float64)
        if wants_grad(spec, case) and not is_empty_case(case):
            _check_grad(spec, case)


# ------------------------------------------------------------------ results are graph nodes
def test_op_results_track_grad_only_when_inputs_do():
    x = pyzen.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = pyzen.exp(x)
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    z = pyzen.exp(x.detach())
    assert not z.requires_grad and z.grad_fn is None
    b = pyzen.gt(x, 1.5)
    assert not b.requires_grad
    i = pyzen.argmax(x)
    assert not i.requires_grad


def test_max_with_dim_returns_values_and_indices_namedtuple():
    a = np.array([[0.1, 0.9, 0.3], [0.7, 0.2, 0.5]])
    r = pyzen.max(pyzen.tensor(a), dim=1)
    assert_np_close(to_np(r.values), a.max(1), 0, 0)
    np.testing.assert_array_equal(to_np(r.indices), [1, 0])
    v, i = pyzen.min(pyzen.tensor(a), 1)
    np.testing.assert_array_equal(to_np(i), [0, 1])
    assert v.dtype == pyzen.float64 and i.dtype == pyzen.int64  # tensor(float64 array) keeps float64


# ------------------------------------------------------------------ methods == functions
_X = np.array([[0.3, 1.2, 0.7], [1.9, 0.4, 1.1]])
_Y = np.array([[1.5, 0.6, 0.8], [0.2, 1.3, 0.9]])
_METHOD_CALLS = {
    # name: (args after self, kwargs)
    **{n: ((), {}) for n in "neg abs exp log sqrt rsqrt sin cos tanh sigmoid relu sum mean var std "
                          "max min argmax argmin prod flatten squeeze".split()},
    **{n: (("Y",), {}) for n in "add sub mul div pow maximum minimum eq ne lt le gt ge".split()},
    "matmul": (("YT",), {}),
    "clamp": ((), {"min": 0.5, "max": 1.0}),
    "logsumexp": ((1,), {}),
    "softmax": ((1,), {}),
    "log_softmax": ((-1,), {}),
    "cumsum": ((1,), {}),
    "reshape": ((3, 2), {}),
    "transpose": ((0, 1), {}),
    "permute": ((1, 0), {}),
    "unsqueeze": ((1,), {}),
    "split": ((1,), {}),
    "chunk": ((2,), {"dim": 1}),
    "flip": (((0,),), {}),
    "tril": ((), {}),
    "triu": ((1,), {}),
    "index_select": ((1, "IDX"), {}),
    "gather": ((1, "IDX2"), {}),
    "masked_fill": (("MASK", 0.0), {}),
}


@pytest.mark.parametrize("name", sorted(_METHOD_CALLS))
def test_method_matches_function(name):
    x, y = pyzen.tensor(_X), pyzen.tensor(_Y)
    subs = {"Y": y, "YT": pyzen.tensor(_Y.T.copy()), "IDX": pyzen.tensor([2, 0, 2]),
            "IDX2": pyzen.tensor([[0, 2], [1, 1]]), "MASK": pyzen.tensor(_X > 1.0)}
    args, kwargs = _METHOD_CALLS[name]
    args = [subs[a] if isinstance(a, str) else a for a in args]
    assert hasattr(pyzen.Tensor, name), f"Tensor has no method {name}"
    m = as_tuple(getattr(x, name)(*args, **kwargs))
    f = as_tuple(getattr(pyzen, name)(x, *args, **kwargs))
    assert len(m) == len(f)
    for a, b in zip(m, f):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(to_np(a), to_np(b))


def test_logical_methods():
    a = pyzen.tensor([True, False, True, False])
    b = pyzen.tensor([True, True, False, False])
    np.testing.assert_array_equal(to_np(a.logical_and(b)), [True, False, False, False])
    np.testing.assert_array_equal(to_np(a.logical_or(b)), [True, True, True, False])
    np.testing.assert_array_equal(to_np(a.logical_xor(b)), [False, True, True, False])
    np.testing.assert_array_equal(to_np(a.logical_not()), [False, True, False, True])


# ------------------------------------------------------------------ hypothesis: broadcasting
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3),
       op=st.sampled_from(["add", "sub", "mul", "maximum"]))
def test_broadcasting_forward_and_grad_shapes(shapes, op):
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    rng = rng_for(sa, sb, op)
    a = rng.uniform(-1, 1, sa)
    b = rng.uniform(-1, 1, sb) + 3.0 * (op == "maximum")  # keep maximum away from ties
    ta = pyzen.tensor(a, dtype=pyzen.float64, requires_grad=True)
    tb = pyzen.tensor(b, dtype=pyzen.float64, requires_grad=True)
    out = getattr(pyzen, op)(ta, tb)
    ref = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum}[op](a, b)
    assert out.shape == out_shape
    assert_np_close(to_np(out), ref, 1e-12, 1e-12)
    g = rng.uniform(-1, 1, out_shape)
    (out * pyzen.tensor(g, dtype=pyzen.float64)).sum().backward()
    ga = {"add": g, "sub": g, "mul": g * b, "maximum": np.zeros(out_shape)}[op]
    gb = {"add": g, "sub": -g, "mul": g * a, "maximum": g * np.ones(out_shape)}[op]
    assert_np_close(to_np(ta.grad), unbroadcast(np.broadcast_to(ga, out_shape), sa), 1e-12, 1e-12)
    assert_np_close(to_np(tb.grad), unbroadcast(np.broadcast_to(gb, out_shape), sb), 1e-12, 1e-12)


# ------------------------------------------------------------------ hypothesis: reductions over any dim
_REDUCTIONS = {
    "sum": (lambda t, d, k: pyzen.sum(t, dim=d, keepdim=k), lambda a, d, k: np.sum(a, axis=d, keepdims=k)),
    "mean": (lambda t, d, k: pyzen.mean(t, dim=d, keepdim=k), lambda a, d, k: np.mean(a, axis=d, keepdims=k)),
    "max": (lambda t, d, k: pyzen.max(t, dim=d, keepdim=k).values,
            lambda a, d, k: np.max(a, axis=d, keepdims=k)),
    "argmin": (lambda t, d, k: pyzen.argmin(t, dim=d, keepdim=k),
               lambda a, d, k: np.expand_dims(np.argmin(a, axis=d), d) if k else np.argmin(a, axis=d)),
    "logsumexp": (lambda t, d, k: pyzen.logsumexp(t, dim=d, keepdim=k),
                  lambda a, d, k: np.log(np.sum(np.exp(a), axis=d, keepdims=k))),
    "var": (lambda t, d, k: pyzen.var(t, dim=d, keepdim=k, correction=0),
            lambda a, d, k: np.var(a, axis=d, keepdims=k)),
    "softmax": (lambda t, d, k: pyzen.softmax(t, dim=d),
                lambda a, d, k: np.exp(a) / np.sum(np.exp(a), axis=d, keepdims=True)),
    "cumsum": (lambda t, d, k: pyzen.cumsum(t, dim=d), lambda a, d, k: np.cumsum(a, axis=d)),
}


@pytest.mark.parametrize("op", sorted(_REDUCTIONS))
@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(0, 3), min_size=1, max_size=3), data=st.data(), keepdim=st.booleans())
def test_reduction_over_any_dim(op, shape, data, keepdim):
    ndim = len(shape)
    dim = data.draw(st.integers(-ndim, ndim - 1), label="dim")
    shape[dim] = max(shape[dim], 1)  # the reduced dim is never empty; the others may be
    a = rng_for(tuple(shape), dim, op).permutation(int(np.prod(shape))).reshape(shape) / 7.0
    fn, ref = _REDUCTIONS[op]
    got = fn(pyzen.tensor(a, dtype=pyzen.float64), dim, keepdim)
    want = ref(a, dim, keepdim)
    assert got.shape == want.shape
    assert_np_close(to_np(got), want, 1e-10, 1e-12, what=f"{op} dim={dim} keepdim={keepdim}")


# ------------------------------------------------------------------ large inputs (SIMD bodies, tails, threads)
def _gelu_and_grad(x, approximate):
    from op_table import _erf

    if approximate == "tanh":
        c = np.sqrt(2.0 / np.pi)
        u = c * (x + 0.044715 * x**3)
        t = np.tanh(u)
        return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x**2)
    cdf = 0.5 * (1 + _erf(x / np.sqrt(2.0)))
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [pyzen.float32, pyzen.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 1000, 20_011])
def test_gelu_forward_backward_large(isa, n, dtype, approximate):
    rng = rng_for("gelu-large", n)
    a = rng.uniform(-6, 6, n)
    a[: min(n, 4)] = [0.0, -10.0, 10.0, -1e-3][: min(n, 4)]
    np_dt = np.float32 if dtype == pyzen.float32 else np.float64
    a = a.astype(np_dt).astype(np.float64)
    g = rng.uniform(-1, 1, n).astype(np_dt).astype(np.float64)
    x = pyzen.tensor(a, dtype=dtype, requires_grad=True)
    y = pyzen.gelu(x, approximate=approximate)
    (y * pyzen.tensor(g, dtype=dtype)).sum().backward()
    want_y, want_d = _gelu_and_grad(a, approximate)
    rtol, atol = (1e-10, 1e-12) if dtype == pyzen.float64 else (1e-5, 1e-6)
    assert_np_close(to_np(y), want_y, rtol, atol, what="gelu forward")
    assert_np_close(to_np(x.grad), want_d * g, rtol, atol, what="gelu backward")
    # the strided view takes the same path through the kernel (or a copy) and agrees
    xs = pyzen.tensor(np.repeat(a, 2), dtype=dtype)[::2]
    assert_np_close(to_np(pyzen.gelu(xs, approximate=approximate)), want_y, rtol, atol)
