"""Random calls into the native binding layer pyzen._C, for tests/test_fuzz_native.py.

Run in a child process (``python tests/native_fuzzer.py CASES SEED``) so that a crash
fails one test instead of killing pytest; it prints one JSON line with the counts and
every failure.

Each case starts from a valid call (random small shapes, both float dtypes, any layout:
transposed, strided, negative strides, read-only, misaligned), then usually breaks one
or two arguments: a wrong dtype, rank, size or layout, a huge broadcast shape, NaN/inf
values, None, a list, a bad scalar. The call must then either

* return what the NumPy float64 reference gives for the same arguments -- and the
  reference must accept them (a bad input that is silently accepted is a failure) --
  with the inputs unchanged, or
* raise TypeError/ValueError/IndexError/OverflowError/MemoryError/RuntimeError with the
  op's name in the message, leaving every argument (in-place outputs included) unchanged.

Sizes stay small and huge shapes are stride-0 broadcasts, so no case allocates much; an
address-space limit makes any absurd allocation fail fast instead of swapping.
"""
from __future__ import annotations

import json
import math
import resource
import sys
import traceback
import warnings

import numpy as np

from bf16_reference import round_bf16
from pyzen import _C

EXPECTED_ERRORS = (TypeError, ValueError, IndexError, OverflowError, MemoryError, RuntimeError)
HUGE = 1 << 40  # one stride-0 dim this long makes any result far larger than memory
ADDRESS_SPACE_LIMIT = 6 << 30


class Invalid(Exception):
    """The reference refuses these arguments: the binding must raise too."""


def need(cond, why: str) -> None:
    if not cond:
        raise Invalid(why)


# ----------------------------------------------------------------------------- arrays
def float_dtype(*arrays) -> np.dtype:
    """The one float dtype of ``arrays`` (all float32 or all float64)."""
    for a in arrays:
        need(isinstance(a, np.ndarray), f"{type(a).__name__} is not an array")
    dts = {a.dtype for a in arrays}
    need(len(dts) == 1 and dts <= {np.dtype(np.float32), np.dtype(np.float64)}, f"dtypes {dts}")
    return dts.pop()


def as_float(x) -> float:
    """A Python number as the bindings' double arguments take it (bool and int included)."""
    need(isinstance(x, (int, float, np.integer, np.floating)), f"{x!r} is not a real number")
    return float(x)


def as_int(x) -> int:
    """An integer as the bindings' int64 arguments take it."""
    need(isinstance(x, (int, np.integer)) and -(2**63) <= x < 2**63, f"{x!r} is not an int64")
    return int(x)


def as_flag(x) -> bool:
    """A bool argument: pybind11 converts None and numbers by truth value."""
    need(x is None or isinstance(x, (int, float, np.bool_, np.integer, np.floating)), f"{x!r} is not a flag")
    return bool(x)


def fits(dtype, *values) -> bool:
    """Whether every value is finite in ``dtype``. A kernel computing in float32 cannot follow
    a float64 reference whose intermediates overflow float32 (weight_decay=1e308): then the
    result's values are not specified, only its shape and dtype."""
    with np.errstate(all="ignore"):
        return all(bool((np.abs(np.asarray(v, np.float64)) <= np.finfo(dtype).max).all()) for v in values)


def f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def layout(r: np.random.Generator, x: np.ndarray, contiguous: bool) -> np.ndarray:
    """``x``'s values in a random memory layout (C order when ``contiguous``)."""
    kinds = ["C"] if contiguous else ["C", "T", "slice", "neg", "F", "misaligned"]
    kind = kinds[r.integers(len(kinds))]
    if kind == "T" and x.ndim >= 2:
        x = np.swapaxes(np.swapaxes(x, -1, -2).copy(), -1, -2)
    elif kind == "slice" and x.ndim >= 1:
        base = np.repeat(x, 2, axis=-1)
        x = base[..., ::2]
    elif kind == "neg" and x.ndim >= 1:
        x = x[::-1].copy()[::-1]
    elif kind == "F":
        x = np.asfortranarray(x)
    elif kind == "misaligned":
        raw = np.zeros(x.nbytes + 1, np.uint8)[1:]
        y = raw.view(x.dtype).reshape(x.shape)
        y[...] = x
        x = y
    else:
        x = np.ascontiguousarray(x)
    if r.random() < 0.2:
        x.flags.writeable = False  # inputs are only read: read-only must be fine
    return x


def rand_array(r, shape, dtype, lo=-1.0, hi=1.0) -> np.ndarray:
    return r.uniform(lo, hi, size=shape).astype(dtype)


def rand_dim(r, lo=0, hi=5) -> int:
    return int(r.integers(lo, hi + 1))


# ----------------------------------------------------------------------------- mutations
def mutate_array(r, x):
    """A broken version of array argument ``x``."""
    if not isinstance(x, np.ndarray):
        return None
    if max(x.shape, default=0) > 1 << 16:  # already huge (stride 0 or size 0): resizing a dim could allocate it
        return np.zeros(3)
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    choice = r.integers(12)
    if choice == 0:
        return x.astype([np.int64, np.int32, np.float16, np.bool_, object, np.complex128][r.integers(6)])
    if choice == 1:
        return x[None]  # one more dim
    if choice == 2:
        return x[..., 0] if x.ndim and x.shape[-1] else np.zeros((), dt)  # one fewer dim
    if choice == 3 and x.ndim:  # one dim one longer or shorter
        shape = list(x.shape)
        d = r.integers(x.ndim)
        shape[d] = max(shape[d] + (1 if r.random() < 0.5 or shape[d] == 0 else -1), 0)
        return rand_array(r, shape, dt)
    if choice == 4 and x.ndim:  # a zero-size dim
        shape = list(x.shape)
        shape[r.integers(x.ndim)] = 0
        return np.zeros(shape, dt)
    if choice == 5 and x.ndim:  # a huge logical shape over one element (stride 0)
        shape = list(x.shape)
        shape[r.integers(x.ndim)] = HUGE
        if r.random() < 0.5:
            return np.broadcast_to(np.ones((), dt), shape)
        return np.lib.stride_tricks.as_strided(np.ones(1, dt), shape=shape, strides=(0,) * len(shape))
    if choice == 6 and x.size:  # NaN / inf somewhere
        y = np.array(x, dtype=dt)
        y.flat[r.integers(y.size)] = [np.nan, np.inf, -np.inf][r.integers(3)]
        return y
    if choice == 7:
        return [None, 1.0, "x", x.tolist()][r.integers(4)]
    if choice == 8:
        return layout(r, np.array(x, dtype=dt), contiguous=False)
    if choice == 9 and x.ndim >= 1 and x.size:  # overlapping rows: as_strided with stride 0 on dim 0
        return np.lib.stride_tricks.as_strided(x, shape=x.shape, strides=(0,) + x.strides[1:])
    if choice == 10:
        y = np.array(x)
        y.flags.writeable = False
        return y
    return x.astype(np.float32 if dt == np.float64 else np.float64)  # the other float dtype


FLOAT_BAD = [np.nan, np.inf, -np.inf, -1.0, -1e-3, 0.0, 1e308, 1e-320, 10**30, 2**63, None, "1", True, 3 + 0j]
INT_BAD = [-1, 0, 2**31, 2**63 - 1, 2**63, -(2**63), 2**64, 1.5, None, "3", True, np.int64(2), np.float64(2.0)]
BOOL_BAD = [None, 2, "yes", np.bool_(True), 0.5, []]
ITERS_BAD = [-1, -(2**63), 2**63, 2**64, 1.5, None, "10", True]  # no large valid count: it would run
STR_BAD = ["", "TANH", "none\0", "erf", 3, None, b"tanh"]


def mutate_scalar(r, kind: str):
    table = {"float": FLOAT_BAD, "int": INT_BAD, "iters": ITERS_BAD, "bool": BOOL_BAD, "str": STR_BAD}[kind]
    return table[r.integers(len(table))]


def mutate_list(r, xs):
    """A broken version of a list-of-arrays argument (adamw_step)."""
    if xs is None:
        return []
    choice = r.integers(5)
    if choice == 0:
        return tuple(xs)
    if choice == 1:
        return xs[:-1] if xs else [np.zeros(1)]
    if choice == 2:
        return None
    if choice == 3 and xs:
        ys = list(xs)
        i = r.integers(len(ys))
        ys[i] = mutate_array(r, ys[i])
        return ys
    return xs + xs[:1]


# ----------------------------------------------------------------------------- comparison
def close(got, want, dtype, what: str, atol=None, rtol=None) -> None:
    """``got`` (from the kernel) matches ``want`` (float64) wherever ``want`` is finite in
    ``dtype`` (a value beyond float32's range cannot be returned as float32)."""
    assert isinstance(got, np.ndarray), f"{what}: returned {type(got).__name__}"
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    fin = np.abs(want) <= np.finfo(dtype).max
    if not fin.any():
        return
    tight = dtype == np.float64
    rtol = rtol if rtol is not None else (1e-9 if tight else 2e-4)
    scale = max(1.0, float(np.abs(want[fin]).max()))
    atol = atol if atol is not None else (1e-10 if tight else 2e-5) * scale
    g = got.astype(np.float64)[fin]
    bad = ~(np.abs(g - want[fin]) <= atol + rtol * np.abs(want[fin]))
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {fin.sum()} values differ, e.g. "
                           f"{g[bad][:3]} vs {want[fin][bad][:3]}")


# ----------------------------------------------------------------------------- ops
# Each op: gen(r) -> (args: dict of name -> value, kinds: dict of name -> mutation kind)
# and check(args, result) which raises Invalid when the reference refuses the arguments
# and AssertionError when the result is wrong.
def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu(x, approximate):
    if approximate == "tanh":
        c = math.sqrt(2 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x**3))
        return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x**2)
    return 0.5 * x * (1 + _erf(x / math.sqrt(2))), 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _approximate(a):
    a = a.decode() if isinstance(a, bytes) else a  # pybind11 takes bytes for std::string
    need(isinstance(a, str) and a in ("none", "tanh"), f"approximate={a!r}")
    return a


def _shape(r, max_ndim=3):
    return tuple(rand_dim(r) for _ in range(rand_dim(r, 0, max_ndim)))


def gen_matmul(r):
    dt = [np.float32, np.float64][r.integers(2)]
    b, m, k, n = (rand_dim(r, 0, 4), rand_dim(r, 0, 7), rand_dim(r, 0, 9), rand_dim(r, 0, 7))
    a_ = layout(r, rand_array(r, (b, m, k), dt), False)
    b_ = layout(r, rand_array(r, (b, k, n), dt), False)
    if b and r.random() < 0.2:  # a broadcast batch (stride 0)
        a_ = np.broadcast_to(a_[:1], a_.shape)
    bias = rand_array(r, (n,), dt) if r.random() < 0.3 else None
    return {"a": a_, "b": b_, "bias": bias}, {"a": "array", "b": "array", "bias": "array"}


def with_bias(x, want, bound, dt):
    """want + bias and its share of the error bound, if the call has a valid bias."""
    bias = x["bias"]
    if bias is None:
        return want, bound
    need(isinstance(bias, np.ndarray) and bias.dtype == dt, "bias dtype")
    need(bias.ndim == 1 and bias.shape[0] == want.shape[2] and bias.flags.c_contiguous, "bias shape")
    need(bias.ctypes.data % bias.itemsize == 0, "bias alignment")
    return want + f64(bias), bound + 2 * np.finfo(dt).eps * np.abs(f64(bias))


def check_matmul(x, out):
    dt = float_dtype(x["a"], x["b"])
    a, b = f64(x["a"]), f64(x["b"])
    need(a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0] and a.shape[2] == b.shape[1], "shapes")
    with np.errstate(all="ignore"):
        want = a @ b
        bound = 2 * (a.shape[2] + 1) * np.finfo(dt).eps * (np.abs(a) @ np.abs(b))  # dot-product error bound
        want, bound = with_bias(x, want, bound, dt)
    assert isinstance(out, np.ndarray) and out.shape == want.shape and out.dtype == dt, f"matmul returned {out!r:.80}"
    fin = np.isfinite(want)
    err = np.abs(out.astype(np.float64) - want)
    assert (err[fin] <= bound[fin]).all(), f"matmul: error {err[fin].max()} above the rounding bound"


def gen_matmul_bf16(r):
    args, kinds = gen_matmul(r)
    return {k: None if v is None else v.astype(np.float32) for k, v in args.items()}, kinds


def check_matmul_bf16(x, out):
    need(float_dtype(x["a"], x["b"]) == np.float32, "float32 only")
    need(_C.bf16_path() != "float32", "no bfloat16 kernel on the active path")
    # the documented rounding: nearest even, float32 denormals flushed to zero
    a, b = (np.where(np.abs(v) < 2.0**-126, 0.0, v) for v in (f64(round_bf16(x[k])) for k in ("a", "b")))
    need(a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0] and a.shape[2] == b.shape[1], "shapes")
    with np.errstate(all="ignore"):
        want = a @ b
        bound = 2 * (a.shape[2] + 1) * np.finfo(np.float32).eps * (np.abs(a) @ np.abs(b))
        want, bound = with_bias(x, want, bound, np.float32)
    assert isinstance(out, np.ndarray) and out.shape == want.shape and out.dtype == np.float32, f"matmul_bf16 returned {out!r:.80}"
    fin = np.isfinite(want)
    err = np.abs(out.astype(np.float64) - want)
    assert (err[fin] <= bound[fin]).all(), f"matmul_bf16: error {err[fin].max()} above the rounding bound"


def gen_set_bf16_path(r):
    names = _C.bf16_paths() + ["amx", "avx512_bf16", "float32", "", "AMX", "bf16", None, 3]
    return {"name": names[r.integers(len(names))]}, {"name": "str"}


def check_set_bf16_path(a, res):
    need(a["name"] in _C.bf16_paths(), f"bf16 path {a['name']!r}")
    assert res is None and _C.bf16_path() in (a["name"], "float32"), f"set_bf16_path({a['name']!r}) left {_C.bf16_path()}"


def gen_round_bf16(r):
    x = layout(r, rand_array(r, _shape(r), np.float32, -1e30, 1e30), r.random() < 0.8)
    return {"x": x}, {"x": "array"}


def check_round_bf16(a, out):
    x = a["x"]
    need(isinstance(x, np.ndarray) and x.dtype == np.float32, "float32 only")
    need(x.flags.c_contiguous and x.ctypes.data % 4 == 0, "C-contiguous and aligned")
    want = round_bf16(x)
    assert isinstance(out, np.ndarray) and out.shape == x.shape and out.dtype == np.float32, f"round_bf16 returned {out!r:.80}"
    same = (out.view(np.uint32) == want.view(np.uint32)) | (np.isnan(out) & np.isnan(want))
    assert same.all(), "round_bf16: bits differ from the reference rounding"


def gen_gelu_forward(r):
    dt = [np.float32, np.float64][r.integers(2)]
    x = layout(r, rand_array(r, _shape(r), dt, -5, 5), r.random() < 0.8)
    return {"x": x, "approximate": ["none", "tanh"][r.integers(2)]}, {"x": "array", "approximate": "str"}


def check_gelu_forward(x, out):
    dt = float_dtype(x["x"])
    close(out, _gelu(f64(x["x"]), _approximate(x["approximate"]))[0], dt, "gelu_forward")


def gen_gelu_backward(r):
    args, kinds = gen_gelu_forward(r)
    g = layout(r, rand_array(r, args["x"].shape, args["x"].dtype), r.random() < 0.8)
    return {"grad": g, **args}, {"grad": "array", **kinds}


def check_gelu_backward(x, out):
    dt = float_dtype(x["grad"], x["x"])
    need(x["grad"].shape == x["x"].shape, "shapes")
    close(out, f64(x["grad"]) * _gelu(f64(x["x"]), _approximate(x["approximate"]))[1], dt, "gelu_backward")


def gen_layer_norm_forward(r):
    dt = [np.float32, np.float64][r.integers(2)]
    shape = _shape(r, 3) or (rand_dim(r),)
    c = shape[-1]
    x = layout(r, rand_array(r, shape, dt, -3, 3) + r.uniform(-100, 100), r.random() < 0.8)
    w = None if r.random() < 0.3 else layout(r, rand_array(r, (c,), dt), r.random() < 0.8)
    b = None if r.random() < 0.3 else layout(r, rand_array(r, (c,), dt), r.random() < 0.8)
    eps = [1e-5, 1e-3, 0.0, 1.0][r.integers(4)]
    return ({"x": x, "weight": w, "bias": b, "eps": eps},
            {"x": "array", "weight": "array", "bias": "array", "eps": "float"})


def _ln_stats(x, eps):
    need(as_float(eps) >= 0, f"eps={eps!r}")
    mean = x.mean(-1)
    var = ((x - mean[..., None]) ** 2).mean(-1)
    return mean, 1.0 / np.sqrt(var + eps)


def _weight(w, c, dt, name):
    if w is None:
        return np.ones(c)
    need(float_dtype(w) == dt and w.shape == (c,), f"{name} shape {w.shape}")
    return f64(w)


def check_layer_norm_forward(a, res):
    dt = float_dtype(a["x"])
    x = f64(a["x"])
    need(x.ndim >= 1, "0-d x")
    c = x.shape[-1]
    w = _weight(a["weight"], c, dt, "weight")
    b = np.zeros(c) if a["bias"] is None else _weight(a["bias"], c, dt, "bias")
    mean, rstd = _ln_stats(x, a["eps"])
    rstd = f64(rstd.astype(dt))  # the kernel normalises with rstd rounded to x's dtype (inf for eps=1e-320 in float32)
    out = (x - mean[..., None]) * rstd[..., None] * w + b
    assert isinstance(res, tuple) and len(res) == 3, f"layer_norm_forward returned {type(res)}"
    close(res[0], out, dt, "layer_norm_forward out")
    close(res[1], mean, dt, "layer_norm_forward mean")
    close(res[2], rstd, dt, "layer_norm_forward rstd")


def gen_layer_norm_backward(r):
    a, _ = gen_layer_norm_forward(r)
    x, dt = a["x"], a["x"].dtype
    mean, rstd = _ln_stats(f64(x), a["eps"])
    args = {"g": layout(r, rand_array(r, x.shape, dt), r.random() < 0.8), "x": x, "weight": a["weight"],
            "mean": layout(r, mean.astype(dt), r.random() < 0.8), "rstd": layout(r, rstd.astype(dt), r.random() < 0.8),
            "need_bias": bool(r.random() < 0.5)}
    kinds = {"g": "array", "x": "array", "weight": "array", "mean": "array", "rstd": "array", "need_bias": "bool"}
    return args, kinds


def check_layer_norm_backward(a, res):
    dt = float_dtype(a["g"], a["x"], a["mean"], a["rstd"])
    g, x = f64(a["g"]), f64(a["x"])
    need(x.ndim >= 1 and g.shape == x.shape, "g/x shapes")
    lead, c = x.shape[:-1], x.shape[-1]
    need(a["mean"].shape == lead and a["rstd"].shape == lead, "stats shapes")
    need_bias = as_flag(a["need_bias"])
    w = _weight(a["weight"], c, dt, "weight")
    # The kernel may recompute the row mean from x (more precisely than the rounded mean
    # passed in), so the exact mean is the reference; stats that do not belong to x (a
    # mutated x, mean or rstd) are outside the contract: then only shapes and dtypes count.
    mean, rstd = x.mean(-1, keepdims=True), f64(a["rstd"])[..., None]
    consistent = np.allclose(mean[..., 0], f64(a["mean"]), rtol=1e-6, atol=0) and np.isfinite(x).all()
    if not consistent:
        assert isinstance(res, tuple) and len(res) == 3 and res[0].shape == x.shape and res[0].dtype == dt
        return
    xhat = (x - mean) * rstd
    dxhat = g * w
    with np.errstate(all="ignore"):
        dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    lead_axes = tuple(range(x.ndim - 1))
    assert isinstance(res, tuple) and len(res) == 3
    if c:
        close(res[0], dx, dt, "layer_norm_backward dx")
    if a["weight"] is None:
        assert res[1] is None, "layer_norm_backward: dweight without weight"
    else:
        close(res[1], (g * xhat).sum(lead_axes), dt, "layer_norm_backward dweight")
    if need_bias:
        close(res[2], g.sum(lead_axes), dt, "layer_norm_backward dbias")
    else:
        assert res[2] is None, "layer_norm_backward: dbias without need_bias"


def gen_cross_entropy_forward(r):
    dt = [np.float32, np.float64][r.integers(2)]
    n, c = rand_dim(r, 0, 6), rand_dim(r, 1, 7)
    ignore = [-100, 0, 1][r.integers(3)]
    t = r.integers(0, c, size=n)
    t[r.random(n) < 0.2] = ignore
    args = {"logits": layout(r, rand_array(r, (n, c), dt, -4, 4), r.random() < 0.8),
            "target": layout(r, t.astype(np.int64), r.random() < 0.8),
            "ignore_index": ignore, "label_smoothing": [0.0, 0.1, 1.0][r.integers(3)]}
    return args, {"logits": "array", "target": "array", "ignore_index": "int", "label_smoothing": "float"}


def _ce_common(a):
    dt = float_dtype(a["logits"])
    x, t = f64(a["logits"]), a["target"]
    need(x.ndim == 2 and isinstance(t, np.ndarray) and t.dtype == np.int64 and t.shape == x.shape[:1], "shapes")
    ii, ls = a["ignore_index"], a["label_smoothing"]
    ii, ls = as_int(ii), as_float(ls)
    need(0 <= ls <= 1, f"smoothing={ls!r}")
    keep = t != ii
    need(((t[keep] >= 0) & (t[keep] < x.shape[1])).all(), "target out of range")
    return dt, x, np.where(keep, t, 0), keep, ls


def _lse(x):
    with np.errstate(all="ignore"):
        m = x.max(-1, keepdims=True, initial=-np.inf)
        m = np.where(np.isfinite(m), m, 0.0)
        return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]


def check_cross_entropy_forward(a, res):
    dt, x, t, keep, ls = _ce_common(a)
    lse = _lse(x)
    with np.errstate(all="ignore"):
        pick = x[np.arange(len(t)), t] if x.shape[1] else np.zeros(len(t))
        loss = np.where(keep, (1 - ls) * (lse - pick) + (ls * (lse - x.mean(1)) if ls else 0.0), 0.0)
    assert isinstance(res, tuple) and len(res) == 2
    close(res[0], loss, dt, "cross_entropy_forward losses")
    close(res[1], lse, dt, "cross_entropy_forward lse")


def gen_cross_entropy_backward(r):
    a, kinds = gen_cross_entropy_forward(r)
    dt = a["logits"].dtype
    n = a["logits"].shape[0]
    a["g"] = layout(r, rand_array(r, (n,), dt), r.random() < 0.8)
    a["lse"] = layout(r, _lse(f64(a["logits"])).astype(dt), r.random() < 0.8)
    return a, {**kinds, "g": "array", "lse": "array"}


def check_cross_entropy_backward(a, res):
    dt, x, t, keep, ls = _ce_common(a)
    float_dtype(a["logits"], a["g"], a["lse"])
    need(a["g"].shape == t.shape and a["lse"].shape == t.shape, "g/lse shapes")
    g, lse = f64(a["g"]), f64(a["lse"])
    c = x.shape[1]
    onehot = np.zeros_like(x)
    onehot[np.arange(len(t)), t] = 1.0
    with np.errstate(all="ignore"):
        d = g[:, None] * (np.exp(x - lse[:, None]) - (1 - ls) * onehot - ls / c)
    close(res, np.where(keep[:, None], d, 0.0), dt, "cross_entropy_backward")


def gen_attention_forward(r):
    dt = [np.float32, np.float64][r.integers(2)]
    lead = tuple(rand_dim(r, 0, 3) for _ in range(rand_dim(r, 0, 2)))
    tq, tk, d, dv = rand_dim(r, 0, 6), rand_dim(r, 0, 6), rand_dim(r, 0, 5), rand_dim(r, 0, 5)

    def arr(shape):
        x = layout(r, rand_array(r, shape, dt), r.random() < 0.5)
        return np.ascontiguousarray(x) if x.ndim and x.strides[-1] != x.itemsize and x.shape[-1] > 1 else x

    args = {"q": arr(lead + (tq, d)), "k": arr(lead + (tk, d)), "v": arr(lead + (tk, dv))}
    mask = None
    if r.random() < 0.3:
        mask = r.random(lead + (tq, tk)) < 0.7
    elif r.random() < 0.3:
        mask = np.where(r.random(lead + (tq, tk)) < 0.7, 0.0, -np.inf).astype(dt)
    args.update(mask=mask, is_causal=bool(r.random() < 0.3), scale=float(r.uniform(0.1, 1.5)))
    kinds = {"q": "array", "k": "array", "v": "array", "mask": "array", "is_causal": "bool", "scale": "float"}
    return args, kinds


def _scores(a):
    dt = float_dtype(a["q"], a["k"], a["v"])
    q, k, v = f64(a["q"]), f64(a["k"]), f64(a["v"])
    need(q.ndim >= 2 and k.ndim == q.ndim and v.ndim == q.ndim, "ranks")
    lead, (tq, d), tk, dv = q.shape[:-2], q.shape[-2:], k.shape[-2], v.shape[-1]
    need(k.shape == lead + (tk, d) and v.shape == lead + (tk, dv), "shapes")
    # the kernel computes in q's dtype: a scale beyond float32's range is inf there
    scale, causal, mask = float(dt.type(as_float(a["scale"]))), as_flag(a["is_causal"]), a["mask"]
    with np.errstate(all="ignore"):
        s = (q @ np.swapaxes(k, -1, -2)) * scale
        if mask is not None:
            need(isinstance(mask, np.ndarray) and mask.shape == lead + (tq, tk), "mask shape")
            need(mask.dtype in (np.bool_, dt), f"mask dtype {mask.dtype}")
            s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + f64(mask)
        if causal:
            s = np.where(np.tril(np.ones((tq, tk), bool)), s, -np.inf)
    return dt, q, k, v, s, lead, tq


def _specified(dt, s, res, n_out) -> bool:
    """The kernel folds log2(e) into the scores: beyond the dtype's range /log2(e) the
    values are not specified (scale=1e308 gives NaN), only the result's structure."""
    assert isinstance(res, tuple) and len(res) == n_out and all(isinstance(x, np.ndarray) for x in res)
    assert all(x.dtype == dt for x in res)
    finite = s[np.isfinite(s)]
    return fits(dt, finite * math.log2(math.e))


def check_attention_forward(a, res):
    dt, q, k, v, s, _, _ = _scores(a)
    lse = _lse(s)
    with np.errstate(all="ignore"):
        out = np.exp(s - lse[..., None]) @ v
    if not _specified(dt, s, res, 2):
        return
    close(res[0], out, dt, "attention_forward out")
    close(res[1], lse, dt, "attention_forward lse")


def gen_attention_backward(r):
    a, kinds = gen_attention_forward(r)
    dt, q, k, v, s, lead, tq = _scores(a)
    lse = _lse(s)
    with np.errstate(all="ignore"):
        out = np.exp(s - lse[..., None]) @ v
    dv = v.shape[-1]
    a.update(grad=layout(r, rand_array(r, lead + (tq, dv), dt), True), out=out.astype(dt), lse=lse.astype(dt))
    return a, {**kinds, "grad": "array", "out": "array", "lse": "array"}


def check_attention_backward(a, res):
    dt, q, k, v, s, lead, tq = _scores(a)
    float_dtype(a["q"], a["grad"], a["out"], a["lse"])
    need(a["grad"].shape == lead + (tq, v.shape[-1]) and a["out"].shape == a["grad"].shape, "grad/out shapes")
    need(a["lse"].shape == lead + (tq,), "lse shape")
    g, o, lse = f64(a["grad"]), f64(a["out"]), f64(a["lse"])[..., None]
    dead = np.isneginf(lse)  # fully masked rows contribute nothing
    with np.errstate(all="ignore"):
        p = np.where(dead, 0.0, np.exp(s - lse))
        dot = np.where(dead, 0.0, (g * o).sum(-1, keepdims=True))
        ds = p * (g @ np.swapaxes(v, -1, -2) - dot) * float(dt.type(as_float(a["scale"])))
        want = (ds @ k, np.swapaxes(ds, -1, -2) @ q, np.swapaxes(p, -1, -2) @ g)
    if not _specified(dt, s, res, 3):
        return
    for name, got, w in zip(("dq", "dk", "dv"), res, want):
        close(got, w, dt, f"attention_backward {name}")


ADAMW_KW = ("lr", "beta1", "beta2", "eps", "weight_decay", "decoupled", "maximize")


def gen_adamw_step(r):
    n = rand_dim(r, 0, 3)
    ams = r.random() < 0.3
    lists = {k: [] for k in ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs")}
    for _ in range(n):
        dt = [np.float32, np.float64][r.integers(2)]
        shape = _shape(r, 2)
        lists["params"].append(rand_array(r, shape, dt))
        lists["grads"].append(layout(r, rand_array(r, shape, dt), True))
        lists["exp_avgs"].append(rand_array(r, shape, dt, -0.1, 0.1))
        lists["exp_avg_sqs"].append(rand_array(r, shape, dt, 0.0, 0.1))
        lists["max_exp_avg_sqs"].append(rand_array(r, shape, dt, 0.0, 0.2))
    if not ams:
        lists["max_exp_avg_sqs"] = None
    args = {**lists, "steps": [float(r.integers(1, 20)) for _ in range(n)],
            "lr": float(r.uniform(0, 0.1)), "beta1": float(r.uniform(0, 0.99)), "beta2": float(r.uniform(0.9, 0.999)),
            "eps": float(10 ** r.uniform(-8, -3)), "weight_decay": float(r.choice([0.0, 0.01, 0.1])),
            "decoupled": bool(r.random() < 0.5), "maximize": bool(r.random() < 0.2)}
    kinds = {**{k: "list" for k in lists}, "steps": "steps",
             **{k: "float" for k in ADAMW_KW[:5]}, "decoupled": "bool", "maximize": "bool"}
    return args, kinds


def check_adamw_step(a, res, before):
    assert res is None, f"adamw_step returned {type(res)}"
    for name in ("params", "grads", "exp_avgs", "exp_avg_sqs"):
        need(isinstance(a[name], list), f"{name} is not a list")
    ams = a["max_exp_avg_sqs"] is not None
    need(not ams or isinstance(a["max_exp_avg_sqs"], list), "max_exp_avg_sqs")
    n = len(a["params"])
    lists = [a[k] for k in ("params", "grads", "exp_avgs", "exp_avg_sqs")] + ([a["max_exp_avg_sqs"]] if ams else [])
    need(all(len(xs) == n for xs in lists) and len(a["steps"]) == n, "lengths")
    h = {k: as_float(a[k]) for k in ADAMW_KW[:5]} | {k: as_flag(a[k]) for k in ADAMW_KW[5:]}
    for k in ADAMW_KW[:5]:
        need(math.isfinite(h[k]), f"{k}={h[k]!r}")
    for i in range(n):
        entries = [xs[i] for xs in lists]
        dt = float_dtype(*entries)
        need(all(e.shape == entries[0].shape for e in entries), "entry shapes")
        for j, e in enumerate(entries):
            need(e.flags.c_contiguous, "non-contiguous entry")
            need(j == 1 or e.flags.writeable, "read-only in-place entry")
        need(as_float(a["steps"][i]) >= 1, f"step={a['steps'][i]!r}")
    for i in range(n):
        p, g, m, v = (f64(before[id(xs[i])]) for xs in lists[:4])
        vmax = f64(before[id(lists[4][i])]) if ams else None
        step = a["steps"][i]
        g = -g if h["maximize"] else g
        if h["weight_decay"]:
            if h["decoupled"]:
                p = p * (1 - h["lr"] * h["weight_decay"])
            else:
                g = g + h["weight_decay"] * p
        with np.errstate(all="ignore"):
            m = m + (1 - h["beta1"]) * (g - m)
            v = v * h["beta2"] + (1 - h["beta2"]) * g * g
            den = np.maximum(vmax, v) if ams else v
            step_size = h["lr"] / (1 - np.power(h["beta1"], step))
            bias2_sqrt = np.sqrt(1 - np.power(h["beta2"], step))
            p = p - step_size * m / (np.sqrt(den) / bias2_sqrt + h["eps"])
        dt = lists[0][i].dtype
        coefs = (1 - h["lr"] * h["weight_decay"], h["weight_decay"], 1 - h["beta1"], h["beta2"], 1 - h["beta2"],
                 step_size, bias2_sqrt, h["eps"])
        if not fits(dt, *coefs, g, m, v, den, step_size * m):
            continue
        close(lists[0][i], p, dt, f"adamw_step params[{i}]")
        close(lists[2][i], m, dt, f"adamw_step exp_avgs[{i}]")
        close(lists[3][i], v, dt, f"adamw_step exp_avg_sqs[{i}]")
        if ams:
            close(lists[4][i], np.maximum(vmax, v), dt, f"adamw_step max_exp_avg_sqs[{i}]")


def gen_set_isa(r):
    names = _C.supported_isas() + ["avx512", "", "AVX2", "neon", "scalar\0", None, 3]
    return {"name": names[r.integers(len(names))]}, {"name": "str"}


def check_set_isa(a, res):
    need(a["name"] in _C.supported_isas(), f"isa {a['name']!r}")
    assert res is None and _C.isa() == a["name"], f"set_isa({a['name']!r}) left isa {_C.isa()}"


def gen_set_num_threads(r):
    return {"n": [1, 2, 3, 0, -1, 257, 10**5, 2**31, 2**63, 2**64, 1.5, None, "2"][r.integers(13)]}, {"n": "int"}


def check_set_num_threads(a, res):
    n = as_int(a["n"])
    need(1 <= n <= 256, f"n={n!r}")
    assert res is None and _C.get_num_threads() in (n, 1), f"set_num_threads({n}) -> {_C.get_num_threads()}"


def gen_fma_loop(r):
    return {"iters": [0, 1, 7, 100, -1, -(2**63), 2**64, None, 1.5, "10"][r.integers(10)]}, {"iters": "iters"}


def check_fma_loop(a, res):
    it = as_int(a["iters"])
    need(0 <= it, f"iters={it!r}")
    width = {"avx512": 16, "avx2": 8, "scalar": 1}[_C.isa()]
    assert res == it * 10 * width * 2 * _C.get_num_threads(), f"fma_loop({it}) returned {res}"


OPS = {name: (globals()[f"gen_{name}"], globals()[f"check_{name}"]) for name in (
    "matmul", "matmul_bf16", "set_bf16_path", "round_bf16", "gelu_forward", "gelu_backward", "layer_norm_forward", "layer_norm_backward",
    "cross_entropy_forward", "cross_entropy_backward", "attention_forward", "attention_backward",
    "adamw_step", "set_isa", "set_num_threads", "fma_loop")}
KEYWORD_ONLY = {"adamw_step": ADAMW_KW}


# ----------------------------------------------------------------------------- driver
def mutate(r, args, kinds) -> str:
    name = list(kinds)[r.integers(len(kinds))]
    kind = kinds[name]
    if kind == "array":
        new = mutate_array(r, args[name]) if args[name] is not None else rand_array(r, (2,), np.float64)
    elif kind == "list":
        new = mutate_list(r, args[name])
    elif kind == "steps":
        new = [mutate_scalar(r, "float")] + args[name][1:]
    else:
        new = mutate_scalar(r, kind)
    args[name] = new
    return name


def all_arrays(args):
    for v in args.values():
        if isinstance(v, np.ndarray):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from (e for e in v if isinstance(e, np.ndarray))


def snapshot(args) -> dict:
    """Copies of every (small) array argument, by id, to check what a call changed."""
    return {id(a): np.array(a, copy=True) for a in all_arrays(args) if a.size < 1 << 16 and a.dtype != object}


def unchanged(args, before) -> bool:
    return all(np.array_equal(a, before[id(a)], equal_nan=True) for a in all_arrays(args) if id(a) in before)


def describe(args) -> str:
    """The arguments of a failing case, short: arrays by shape, dtype and strides."""
    def one(v):
        if isinstance(v, np.ndarray):
            head = [v.flat[i] for i in range(min(v.size, 6))]  # v.flat: no copy of a huge broadcast
            small = f" {np.array2string(np.array(head), precision=3)}" if head and v.dtype != object else ""
            return f"array{v.shape} {v.dtype} strides={v.strides}{'' if v.flags.writeable else ' ro'}{small}"
        if isinstance(v, (list, tuple)):
            return type(v)(one(e) for e in v)
        return repr(v)
    return ", ".join(f"{k}={one(v)}" for k, v in args.items())


def run_case(r, op: str, case: int) -> tuple[str, str | None]:
    """One call; returns (outcome, failure message or None)."""
    gen, check = OPS[op]
    args, kinds = gen(r)
    what = ["valid"]
    for _ in range(int(r.choice([0, 0, 1, 1, 2]))):
        what.append(mutate(r, args, kinds))
    kw_only = KEYWORD_ONLY.get(op, ())
    pos = [v for k, v in args.items() if k not in kw_only]
    kw = {k: args[k] for k in kw_only}
    before = snapshot(args)
    shown = describe(args)  # before the call: adamw_step changes its arguments
    label = f"case {case} {op} mutated={what[1:]} ({shown})"
    try:
        res = getattr(_C, op)(*pos, **kw)
    except EXPECTED_ERRORS as e:
        msg = str(e)
        if op not in msg:
            return "raised", f"{label}: {type(e).__name__} does not name the op: {msg[:300]}"
        if not unchanged(args, before):
            return "raised", f"{label}: raised {type(e).__name__} but modified an argument"
        return "raised", None
    except Exception as e:  # noqa: BLE001 - any other type is a failure to report
        return "raised", f"{label}: unexpected {type(e).__name__}: {str(e)[:300]}"
    try:
        if op == "adamw_step":
            check(args, res, before)
        else:
            check(args, res)
            if not unchanged(args, before):
                return "returned", f"{label}: modified an input"
    except Invalid as e:
        return "returned", f"{label}: accepted arguments the reference refuses ({e})"
    except AssertionError as e:
        return "returned", f"{label}: {e}"
    except MemoryError:
        return "returned", None  # the reference could not materialise a huge (valid) input
    return "returned", None


def main(cases: int, seed: int) -> dict:
    np.seterr(all="ignore")  # references meet NaN, inf and empty rows on purpose
    warnings.simplefilter("ignore", RuntimeWarning)
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    r = np.random.default_rng(seed)
    names = list(OPS)
    counts = {"cases": 0, "returned": 0, "raised": 0, "by_op": {n: 0 for n in names}, "failures": []}
    isa0 = _C.isa()
    for case in range(cases):
        if r.random() < 0.1:  # the kernels on every ISA and a few thread counts
            _C.set_isa(_C.supported_isas()[r.integers(len(_C.supported_isas()))])
            _C.set_num_threads(int(r.integers(1, 4)))
        op = names[case % len(names)]
        try:
            outcome, failure = run_case(r, op, case)
        except Exception:  # noqa: BLE001 - a bug in this harness: report it, keep going
            outcome, failure = "harness", f"case {case} {op}: harness error\n{traceback.format_exc()[-800:]}"
        if op == "set_num_threads":
            _C.set_num_threads(int(r.integers(1, 4)))
        counts["cases"] += 1
        counts["by_op"][op] += 1
        counts[outcome] = counts.get(outcome, 0) + 1
        if failure:
            counts["failures"].append(failure)
    _C.set_isa(isa0)
    return counts


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
