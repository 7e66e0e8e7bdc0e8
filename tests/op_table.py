"""The one table of pyzen ops that tests read.

Each ``OpSpec`` says, for one public op (its ``name`` is a name in
``pyzen.ops.__all__``):

* ``fn``: how to call it in pyzen, taking tensors positionally;
* ``ref``: an independent NumPy float64 reference taking arrays in the same order;
* ``cases``: input shapes (broadcasting pairs, 0-d, size-1 and size-0 dims, and
  non-contiguous inputs: transposed and strided views), with domain constraints
  (positive inputs for log/sqrt, values kept away from kinks for abs/relu/clamp,
  distinct values so max/min/argmax have no ties);
* ``grad``: whether gradcheck runs (float64, every float input);
* ``out``: the expected output dtype: "same" (the float input dtype), "bool" or
  "int64"; a tuple when the op returns several tensors of different kinds.

A new op added to ``pyzen.ops.__all__`` without an entry here makes
``tests/test_ops.py::test_every_public_op_has_a_table_entry`` fail.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

import pyzen

# Ops the API guarantees; each must be in pyzen.ops.__all__ and in this table.
REQUIRED_OPS = """
add sub mul div pow neg abs exp log sqrt rsqrt sin cos tanh sigmoid relu gelu silu
maximum minimum clamp where eq ne lt le gt ge logical_and logical_or logical_not
logical_xor masked_fill sum mean var std max min argmax argmin prod logsumexp softmax
log_softmax cumsum matmul reshape flatten transpose permute squeeze unsqueeze cat stack
split chunk flip tril triu gather index_select embedding
""".split()


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Arg:
    """One input: its logical shape, kind and value domain.

    kind: "float" (differentiable), "bool" or "int" (constant inputs).
    gen:  "uniform" in [lo, hi]; "signed": magnitude in [lo, hi] with a random sign;
          "distinct": well separated values (no ties); "intval": integer-valued floats.
    kinks: float values are pushed at least 0.1 away from these points.
    view: None, "T" (a transposed view of a contiguous base) or "slice" (base[..., ::2]).
    """

    shape: tuple
    kind: str = "float"
    lo: float = -1.0
    hi: float = 1.0
    gen: str = "uniform"
    kinks: tuple = ()
    view: Optional[str] = None

    def base_shape(self) -> tuple:
        s = list(self.shape)
        if self.view == "T":
            s[-1], s[-2] = s[-2], s[-1]
        elif self.view == "slice":
            s[-1] = 2 * s[-1]
        return tuple(s)

    def generate(self, rng: np.random.Generator) -> np.ndarray:
        shape = self.base_shape()
        n = int(np.prod(shape, dtype=np.int64))
        if self.kind == "bool":
            return np.asarray(rng.random(shape) < 0.5)
        if self.kind == "int":
            return np.asarray(rng.integers(int(self.lo), int(self.hi), size=shape), dtype=np.int64)
        if self.gen == "uniform":
            v = rng.uniform(self.lo, self.hi, size=shape)
        elif self.gen == "signed":
            v = rng.uniform(self.lo, self.hi, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        elif self.gen == "distinct":
            step = (self.hi - self.lo) / max(n, 1)
            v = self.lo + (rng.permutation(n) + 0.5 + rng.uniform(-0.2, 0.2, n)) * step
            v = v.reshape(shape)
        elif self.gen == "intval":
            v = rng.integers(int(self.lo), int(self.hi) + 1, size=shape).astype(np.float64)
        else:
            raise ValueError(self.gen)
        v = np.array(v, dtype=np.float64)
        for k in self.kinks:
            near = np.abs(v - k) < 0.1
            v[near] = k + np.where(v[near] >= k, 0.1, -0.1)
        return v


def view_np(a: np.ndarray, view):
    if view == "T":
        return np.swapaxes(a, -1, -2)
    if view == "slice":
        return a[..., ::2]
    return a


def view_pz(t, view):
    if view == "T":
        return t.transpose(-2, -1)
    if view == "slice":
        return t[..., ::2]
    return t


@dataclass
class Case:
    id: str
    args: tuple
    grad: Optional[bool] = None  # None: the spec's default


def F(*shape, **kw) -> Arg:
    return Arg(tuple(shape), **kw)


def B(*shape) -> Arg:
    return Arg(tuple(shape), kind="bool")


def I(*shape, lo=0, hi=3) -> Arg:  # noqa: E743 - int input in [lo, hi)
    return Arg(tuple(shape), kind="int", lo=lo, hi=hi)


def unary_cases(**kw) -> list:
    return [
        Case("2d", (F(3, 4, **kw),)),
        Case("0d", (F(**kw),)),
        Case("size1", (F(1, 5, **kw),)),
        Case("3d", (F(2, 3, 4, **kw),)),
        Case("empty", (F(0, 3, **kw),)),
        Case("transposed", (F(3, 4, view="T", **kw),)),
        Case("strided", (F(3, 4, view="slice", **kw),)),
    ]


def binary_cases(kw_a=None, kw_b=None) -> list:
    a, b = kw_a or {}, kw_b or {}
    return [
        Case("same", (F(3, 4, **a), F(3, 4, **b))),
        Case("bcast", (F(3, 1, **a), F(1, 4, **b))),
        Case("bcast_rank", (F(2, 3, 4, **a), F(4, **b))),
        Case("with_0d", (F(3, 4, **a), F(**b))),
        Case("0d_first", (F(**a), F(2, 3, **b))),
        Case("size1", (F(1, 1, **a), F(2, 3, **b))),
        Case("empty", (F(0, 3, **a), F(3, **b))),
        Case("transposed", (F(3, 4, view="T", **a), F(3, 4, **b))),
        Case("strided", (F(3, 4, view="slice", **a), F(3, 4, view="T", **b))),
    ]


# --------------------------------------------------------------------------- specs
@dataclass
class OpSpec:
    name: str
    variant: str
    fn: Callable
    ref: Callable
    cases: list
    grad: bool = True
    out: object = "same"
    rtol32: float = 1e-5
    atol32: float = 1e-6
    method_only: bool = False  # a Tensor method/property not in pyzen.ops.__all__

    @property
    def id(self) -> str:
        return f"{self.name}-{self.variant}" if self.variant else self.name


TABLE: list = []


def add(name, fn, ref, cases, variant="", **kw):
    TABLE.append(OpSpec(name, variant, fn, ref, cases, **kw))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _logsumexp(x, axis, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _gather(x, dim, idx):
    grids = list(np.ix_(*[np.arange(s) for s in idx.shape]))
    grids[dim] = idx
    return x[tuple(grids)]


def _split_sizes(n, size):
    return [min(size, n - s) for s in range(0, n, size)]


pz = pyzen

# ---- elementwise binary (arithmetic) ----
add("add", lambda a, b: pz.add(a, b), np.add, binary_cases())
add("add", lambda a: pz.add(a, 2.5), lambda a: a + 2.5, unary_cases(), variant="scalar")
add("sub", lambda a, b: pz.sub(a, b), np.subtract, binary_cases())
add("sub", lambda a: pz.sub(a, 0.75), lambda a: a - 0.75, unary_cases()[:2], variant="scalar")
add("mul", lambda a, b: pz.mul(a, b), np.multiply, binary_cases())
add("mul", lambda a: pz.mul(a, -1.5), lambda a: a * -1.5, unary_cases()[:2], variant="scalar")
add("div", lambda a, b: pz.div(a, b), np.divide,
    binary_cases(kw_b=dict(gen="signed", lo=0.5, hi=2.0)))
add("div", lambda a: pz.div(a, 4.0), lambda a: a / 4.0, unary_cases()[:2], variant="scalar")
add("pow", lambda a, b: pz.pow(a, b), np.power,
    binary_cases(kw_a=dict(lo=0.5, hi=2.0), kw_b=dict(lo=-2.0, hi=2.0)))
add("pow", lambda a: pz.pow(a, 2), lambda a: a**2, unary_cases(), variant="int_exp")
add("pow", lambda a: pz.pow(a, 3), lambda a: a**3, unary_cases()[:2], variant="cube")
add("pow", lambda a: pz.pow(a, 0.5), np.sqrt, unary_cases(lo=0.2, hi=2.0)[:3], variant="sqrt_exp")
add("pow", lambda a: pz.pow(2.0, a), lambda a: np.power(2.0, a), unary_cases()[:3],
    variant="scalar_base")
add("maximum", lambda a, b: pz.maximum(a, b), np.maximum, binary_cases())
add("minimum", lambda a, b: pz.minimum(a, b), np.minimum, binary_cases())
add("max", lambda a, b: pz.max(a, b), np.maximum, binary_cases()[:3], variant="binary")
add("min", lambda a, b: pz.min(a, b), np.minimum, binary_cases()[:3], variant="binary")

# ---- elementwise unary ----
add("neg", lambda a: pz.neg(a), np.negative, unary_cases())
add("abs", lambda a: pz.abs(a), np.abs, unary_cases(kinks=(0.0,)))
add("exp", lambda a: pz.exp(a), np.exp, unary_cases(lo=-2.0, hi=2.0))
add("log", lambda a: pz.log(a), np.log, unary_cases(lo=0.2, hi=3.0))
add("sqrt", lambda a: pz.sqrt(a), np.sqrt, unary_cases(lo=0.2, hi=3.0))
add("rsqrt", lambda a: pz.rsqrt(a), lambda a: 1.0 / np.sqrt(a), unary_cases(lo=0.2, hi=3.0))
add("sin", lambda a: pz.sin(a), np.sin, unary_cases(lo=-3.0, hi=3.0))
add("cos", lambda a: pz.cos(a), np.cos, unary_cases(lo=-3.0, hi=3.0))
add("tanh", lambda a: pz.tanh(a), np.tanh, unary_cases(lo=-2.0, hi=2.0))
add("sigmoid", lambda a: pz.sigmoid(a), _sigmoid, unary_cases(lo=-4.0, hi=4.0))
add("relu", lambda a: pz.relu(a), lambda a: np.maximum(a, 0.0), unary_cases(kinks=(0.0,)))
add("gelu", lambda a: pz.gelu(a), _gelu, unary_cases(lo=-3.0, hi=3.0))
add("gelu", lambda a: pz.gelu(a, approximate="none"), _gelu, unary_cases(lo=-3.0, hi=3.0)[:2],
    variant="none")
add("gelu", lambda a: pz.gelu(a, approximate="tanh"), _gelu_tanh,
    unary_cases(lo=-3.0, hi=3.0), variant="tanh")
add("silu", lambda a: pz.silu(a), lambda a: a * _sigmoid(a), unary_cases(lo=-4.0, hi=4.0))
add("clamp", lambda a: pz.clamp(a, min=-0.5, max=0.5), lambda a: np.clip(a, -0.5, 0.5),
    unary_cases(kinks=(-0.5, 0.5)))
add("clamp", lambda a: pz.clamp(a, min=-0.25), lambda a: np.maximum(a, -0.25),
    unary_cases(kinks=(-0.25,))[:3], variant="min_only")
add("clamp", lambda a: pz.clamp(a, max=0.25), lambda a: np.minimum(a, 0.25),
    unary_cases(kinks=(0.25,))[:3], variant="max_only")

# ---- selection ----
add("where", lambda c, a, b: pz.where(c, a, b), np.where, [
    Case("same", (B(3, 4), F(3, 4), F(3, 4))),
    Case("bcast", (B(3, 1), F(1, 4), F())),
    Case("transposed", (B(3, 4), F(3, 4, view="T"), F(3, 4, view="slice"))),
    Case("empty", (B(0, 3), F(0, 3), F(3))),
])
add("masked_fill", lambda a, m: pz.masked_fill(a, m, 0.5), lambda a, m: np.where(m, 0.5, a), [
    Case("same", (F(3, 4), B(3, 4))),
    Case("bcast_mask", (F(3, 4), B(1, 4))),
    Case("transposed", (F(3, 4, view="T"), B(3, 4))),
    Case("0d", (F(), B())),
    Case("empty", (F(0, 4), B(4))),
])

# ---- comparisons and logic: forward only ----
_cmp_cases = binary_cases(kw_a=dict(gen="intval", lo=-2, hi=2), kw_b=dict(gen="intval", lo=-2, hi=2))
for _n, _r in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
               ("gt", np.greater), ("ge", np.greater_equal)]:
    add(_n, (lambda n: lambda a, b: getattr(pz, n)(a, b))(_n), _r, _cmp_cases, grad=False, out="bool")
    add(_n, (lambda n: lambda a: getattr(pz, n)(a, 1.0))(_n), (lambda r: lambda a: r(a, 1.0))(_r),
        unary_cases(gen="intval", lo=-2, hi=2)[:3], variant="scalar", grad=False, out="bool")

_bool_bin = [
    Case("same", (B(3, 4), B(3, 4))),
    Case("bcast", (B(3, 1), B(1, 4))),
    Case("0d", (B(), B(2, 3))),
    Case("empty", (B(0, 3), B(3))),
]
for _n, _r in [("logical_and", np.logical_and), ("logical_or", np.logical_or),
               ("logical_xor", np.logical_xor)]:
    add(_n, (lambda n: lambda a, b: getattr(pz, n)(a, b))(_n), _r, _bool_bin, grad=False, out="bool")
add("logical_not", lambda a: pz.logical_not(a), np.logical_not,
    [Case("2d", (B(3, 4),)), Case("0d", (B(),)), Case("empty", (B(0, 2),))], grad=False, out="bool")

# ---- reductions ----
_red = dict(rtol32=1e-5, atol32=1e-5)
_red_cases = [Case("2d", (F(3, 4),)), Case("3d", (F(2, 3, 4),)),
              Case("transposed", (F(3, 4, view="T"),)), Case("strided", (F(3, 4, view="slice"),))]
add("sum", lambda a: pz.sum(a), np.sum, _red_cases + [Case("0d", (F(),)), Case("empty", (F(0, 3),))], **_red)
add("sum", lambda a: pz.sum(a, dim=1), lambda a: np.sum(a, axis=1),
    _red_cases + [Case("empty", (F(0, 3),))], variant="dim", **_red)
add("sum", lambda a: pz.sum(a, dim=-1, keepdim=True), lambda a: np.sum(a, axis=-1, keepdims=True),
    _red_cases, variant="keepdim", **_red)
add("sum", lambda a: pz.sum(a, dim=(0, 2)), lambda a: np.sum(a, axis=(0, 2)),
    [Case("3d", (F(2, 3, 4),))], variant="dims", **_red)
add("mean", lambda a: pz.mean(a), np.mean, _red_cases + [Case("0d", (F(),))], **_red)
add("mean", lambda a: pz.mean(a, dim=0), lambda a: np.mean(a, axis=0),
    _red_cases + [Case("empty", (F(3, 0),))], variant="dim", **_red)
add("mean", lambda a: pz.mean(a, dim=(0, 1), keepdim=True),
    lambda a: np.mean(a, axis=(0, 1), keepdims=True), [Case("3d", (F(2, 3, 4),))],
    variant="dims_keepdim", **_red)
add("var", lambda a: pz.var(a), lambda a: np.var(a, ddof=1), _red_cases, **_red)
add("var", lambda a: pz.var(a, dim=1), lambda a: np.var(a, axis=1, ddof=1),
    _red_cases + [Case("empty", (F(0, 3),))], variant="dim", **_red)
add("var", lambda a: pz.var(a, dim=1, unbiased=False), lambda a: np.var(a, axis=1),
    _red_cases, variant="unbiased_false", **_red)
add("var", lambda a: pz.var(a, dim=0, correction=0, keepdim=True),
    lambda a: np.var(a, axis=0, keepdims=True), _red_cases, variant="correction0_keepdim", **_red)
add("var", lambda a: pz.var(a, dim=-1, correction=2), lambda a: np.var(a, axis=-1, ddof=2),
    _red_cases, variant="correction2", **_red)
add("std", lambda a: pz.std(a), lambda a: np.std(a, ddof=1), _red_cases, **_red)
add("std", lambda a: pz.std(a, dim=1), lambda a: np.std(a, axis=1, ddof=1),
    _red_cases, variant="dim", **_red)
add("std", lambda a: pz.std(a, dim=1, unbiased=False, keepdim=True),
    lambda a: np.std(a, axis=1, keepdims=True), _red_cases, variant="unbiased_false_keepdim", **_red)
add("std", lambda a: pz.std(a, dim=0, correction=0), lambda a: np.std(a, axis=0),
    _red_cases, variant="correction0", **_red)

_dist_cases = [Case("2d", (F(3, 4, gen="distinct"),)), Case("3d", (F(2, 3, 4, gen="distinct"),)),
               Case("transposed", (F(3, 4, gen="distinct", view="T"),)),
               Case("strided", (F(3, 4, gen="distinct", view="slice"),))]
for _n, _r, _ar in [("max", np.max, np.argmax), ("min", np.min, np.argmin)]:
    add(_n, (lambda n: lambda a: getattr(pz, n)(a))(_n), _r, _dist_cases + [Case("0d", (F(),))])
    add(_n, (lambda n: lambda a: tuple(getattr(pz, n)(a, dim=1)))(_n),
        (lambda r, ar: lambda a: (r(a, axis=1), ar(a, axis=1)))(_r, _ar),
        _dist_cases + [Case("empty", (F(0, 3),))], variant="dim", out=("same", "int64"))
    add(_n, (lambda n: lambda a: tuple(getattr(pz, n)(a, dim=0, keepdim=True)))(_n),
        (lambda r, ar: lambda a: (r(a, axis=0, keepdims=True),
                                  np.expand_dims(ar(a, axis=0), 0)))(_r, _ar),
        _dist_cases, variant="dim_keepdim", out=("same", "int64"))
for _n, _ar in [("argmax", np.argmax), ("argmin", np.argmin)]:
    add(_n, (lambda n: lambda a: getattr(pz, n)(a))(_n), _ar, _dist_cases, grad=False, out="int64")
    add(_n, (lambda n: lambda a: getattr(pz, n)(a, dim=1))(_n),
        (lambda ar: lambda a: ar(a, axis=1))(_ar), _dist_cases, variant="dim", grad=False, out="int64")
    add(_n, (lambda n: lambda a: getattr(pz, n)(a, dim=-1, keepdim=True))(_n),
        (lambda ar: lambda a: np.expand_dims(ar(a, axis=-1), -1))(_ar), _dist_cases,
        variant="keepdim", grad=False, out="int64")

_prod_kw = dict(gen="signed", lo=0.5, hi=1.5)
_prod_cases = [Case("2d", (F(3, 4, **_prod_kw),)), Case("transposed", (F(3, 4, view="T", **_prod_kw),)),
               Case("0d", (F(**_prod_kw),))]
add("prod", lambda a: pz.prod(a), np.prod, _prod_cases, **_red)
add("prod", lambda a: pz.prod(a, dim=1), lambda a: np.prod(a, axis=1), _prod_cases[:2]
    + [Case("empty", (F(0, 3, **_prod_kw),))], variant="dim", **_red)
add("prod", lambda a: pz.prod(a, dim=0, keepdim=True), lambda a: np.prod(a, axis=0, keepdims=True),
    _prod_cases[:2], variant="keepdim", **_red)

_lse_cases = [Case("2d", (F(3, 4, lo=-3, hi=3),)), Case("3d", (F(2, 3, 4, lo=-3, hi=3),)),
              Case("transposed", (F(3, 4, lo=-3, hi=3, view="T"),)),
              Case("strided", (F(3, 4, lo=-3, hi=3, view="slice"),)),
              Case("empty", (F(0, 4),))]
add("logsumexp", lambda a: pz.logsumexp(a, dim=1), lambda a: _logsumexp(a, 1), _lse_cases, **_red)
add("logsumexp", lambda a: pz.logsumexp(a, dim=-1, keepdim=True),
    lambda a: _logsumexp(a, -1, keepdims=True), _lse_cases[:4], variant="keepdim", **_red)
add("logsumexp", lambda a: pz.logsumexp(a * 1000.0, dim=1), lambda a: _logsumexp(a * 1000.0, 1),
    _lse_cases[:1], variant="large", grad=False, rtol32=1e-5, atol32=1e-3)
add("softmax", lambda a: pz.softmax(a, dim=1), lambda a: _softmax(a, 1), _lse_cases, **_red)
add("softmax", lambda a: pz.softmax(a, dim=-1), lambda a: _softmax(a, -1), _lse_cases[:4],
    variant="last", **_red)
add("softmax", lambda a: pz.softmax(a * 1000.0, dim=0), lambda a: _softmax(a * 1000.0, 0),
    _lse_cases[:1], variant="large", grad=False, **_red)
add("log_softmax", lambda a: pz.log_softmax(a, dim=1), lambda a: a - _logsumexp(a, 1, True),
    _lse_cases, **_red)
add("log_softmax", lambda a: pz.log_softmax(a, dim=0), lambda a: a - _logsumexp(a, 0, True),
    _lse_cases[:4], variant="dim0", **_red)
add("cumsum", lambda a: pz.cumsum(a, dim=1), lambda a: np.cumsum(a, axis=1),
    _red_cases + [Case("empty", (F(0, 3),))], **_red)
add("cumsum", lambda a: pz.cumsum(a, dim=0), lambda a: np.cumsum(a, axis=0), _red_cases,
    variant="dim0", **_red)

# ---- matmul ----
_mm = dict(rtol32=1e-5, atol32=2e-5)
add("matmul", lambda a, b: pz.matmul(a, b), np.matmul, [
    Case("2d", (F(3, 4), F(4, 5))),
    Case("vec_vec", (F(4), F(4))),
    Case("vec_mat", (F(4), F(4, 5))),
    Case("mat_vec", (F(3, 4), F(4))),
    Case("batched", (F(2, 3, 4), F(2, 4, 5))),
    Case("batch_bcast", (F(2, 1, 2, 3), F(3, 3, 2))),
    Case("batch_vec", (F(2, 3, 4), F(4))),
    Case("transposed", (F(3, 4, view="T"), F(4, 5, view="slice"))),
    Case("empty_m", (F(0, 4), F(4, 5))),
    Case("empty_k", (F(3, 0), F(0, 5))),
    Case("empty_n", (F(3, 4), F(4, 0))),
], **_mm)

# ---- shape ops ----
add("reshape", lambda a: pz.reshape(a, (2, 6)), lambda a: np.reshape(a, (2, 6)), [
    Case("2d", (F(3, 4),)), Case("transposed", (F(3, 4, view="T"),)),
    Case("strided", (F(3, 4, view="slice"),))])
add("reshape", lambda a: pz.reshape(a, (-1,)), lambda a: np.reshape(a, (-1,)),
    unary_cases(), variant="flat")
add("reshape", lambda a: pz.reshape(a, (3, -1, 2)), lambda a: np.reshape(a, (3, -1, 2)),
    [Case("3d", (F(2, 3, 4),)), Case("empty", (F(0, 6),))], variant="infer")
add("flatten", lambda a: pz.flatten(a), lambda a: np.reshape(a, (-1,)),
    [Case("3d", (F(2, 3, 4),)), Case("0d", (F(),)), Case("transposed", (F(3, 4, view="T"),))])
add("flatten", lambda a: pz.flatten(a, start_dim=1), lambda a: a.reshape(a.shape[0], int(np.prod(a.shape[1:]))),
    [Case("3d", (F(2, 3, 4),)), Case("empty", (F(0, 2, 3),))], variant="start1")
add("flatten", lambda a: pz.flatten(a, 0, 1), lambda a: a.reshape((-1,) + a.shape[2:]),
    [Case("3d", (F(2, 3, 4),))], variant="end1")
add("transpose", lambda a: pz.transpose(a, 0, 1), lambda a: np.swapaxes(a, 0, 1),
    [Case("2d", (F(3, 4),)), Case("3d", (F(2, 3, 4),)), Case("strided", (F(3, 4, view="slice"),)),
     Case("empty", (F(0, 3),))])
add("transpose", lambda a: pz.transpose(a, -1, 0), lambda a: np.swapaxes(a, -1, 0),
    [Case("3d", (F(2, 3, 4),))], variant="negdim")
add("permute", lambda a: pz.permute(a, (2, 0, 1)), lambda a: np.transpose(a, (2, 0, 1)),
    [Case("3d", (F(2, 3, 4),)), Case("empty", (F(2, 0, 3),))])
add("permute", lambda a: pz.permute(a, (1, -1, 0)), lambda a: np.transpose(a, (1, 2, 0)),
    [Case("3d", (F(2, 3, 4),))], variant="negdim")
add("squeeze", lambda a: pz.squeeze(a), np.squeeze,
    [Case("4d", (F(1, 3, 1, 4),)), Case("0d", (F(),)), Case("nothing", (F(2, 3),))])
add("squeeze", lambda a: pz.squeeze(a, 2), lambda a: np.squeeze(a, 2),
    [Case("4d", (F(1, 3, 1, 4),))], variant="dim")
add("squeeze", lambda a: pz.squeeze(a, 1), lambda a: a,
    [Case("non_one", (F(1, 3, 1, 4),))], variant="dim_noop")
add("unsqueeze", lambda a: pz.unsqueeze(a, 0), lambda a: np.expand_dims(a, 0), unary_cases())
add("unsqueeze", lambda a: pz.unsqueeze(a, -1), lambda a: np.expand_dims(a, -1),
    unary_cases()[:4], variant="last")
add("unsqueeze", lambda a: pz.unsqueeze(a, 1), lambda a: np.expand_dims(a, 1),
    [Case("2d", (F(3, 4),))], variant="middle")
add("cat", lambda a, b, c: pz.cat([a, b, c], dim=0), lambda a, b, c: np.concatenate([a, b, c], 0), [
    Case("rows", (F(2, 3), F(1, 3), F(3, 3))),
    Case("with_empty", (F(2, 3), F(0, 3), F(1, 3))),
    Case("views", (F(2, 3, view="T"), F(1, 3, view="slice"), F(2, 3)))])
add("cat", lambda a, b: pz.cat((a, b), dim=-1), lambda a, b: np.concatenate([a, b], -1), [
    Case("cols", (F(2, 1), F(2, 3))), Case("3d", (F(2, 3, 1), F(2, 3, 2)))], variant="lastdim")
add("cat", lambda a: pz.cat([a]), lambda a: a, [Case("single", (F(2, 3),))], variant="single")
add("stack", lambda a, b: pz.stack([a, b]), lambda a, b: np.stack([a, b]), [
    Case("2d", (F(2, 3), F(2, 3))), Case("0d", (F(), F())), Case("views", (F(2, 3, view="T"), F(2, 3)))])
add("stack", lambda a, b, c: pz.stack([a, b, c], dim=1), lambda a, b, c: np.stack([a, b, c], 1), [
    Case("2d", (F(2, 3), F(2, 3), F(2, 3)))], variant="dim1")
add("stack", lambda a, b: pz.stack((a, b), dim=-1), lambda a, b: np.stack([a, b], -1), [
    Case("2d", (F(2, 3), F(2, 3)))], variant="lastdim")
add("split", lambda a: tuple(pz.split(a, 2)),
    lambda a: tuple(np.split(a, np.cumsum(_split_sizes(a.shape[0], 2))[:-1], 0)), [
        Case("uneven", (F(5, 3),)), Case("even", (F(4, 3),)), Case("transposed", (F(5, 3, view="T"),))])
add("split", lambda a: tuple(pz.split(a, [1, 3], dim=1)), lambda a: (a[:, :1], a[:, 1:]), [
    Case("sections", (F(2, 4),))], variant="sections")
add("split", lambda a: tuple(pz.split(a, 3, dim=-1)), lambda a: (a[..., :3], a[..., 3:]), [
    Case("3d", (F(2, 2, 5),))], variant="lastdim")
add("chunk", lambda a: tuple(pz.chunk(a, 3, dim=1)), lambda a: (a[:, :3], a[:, 3:6], a[:, 6:]), [
    Case("uneven", (F(2, 7),)), Case("strided", (F(2, 7, view="slice"),))])
add("chunk", lambda a: tuple(pz.chunk(a, 2)), lambda a: (a[:2], a[2:]), [
    Case("even", (F(4, 3),))], variant="dim0")
add("flip", lambda a: pz.flip(a, (0,)), lambda a: np.flip(a, 0), [
    Case("2d", (F(3, 4),)), Case("transposed", (F(3, 4, view="T"),)), Case("empty", (F(0, 3),))])
add("flip", lambda a: pz.flip(a, (0, -1)), lambda a: np.flip(a, (0, -1)),
    [Case("3d", (F(2, 3, 4),))], variant="dims")
for _n, _r in [("tril", np.tril), ("triu", np.triu)]:
    for _k in (0, 1, -1):
        add(_n, (lambda n, k: lambda a: getattr(pz, n)(a, k))(_n, _k),
            (lambda r, k: lambda a: r(a, k))(_r, _k), [
                Case("square", (F(4, 4),)), Case("wide", (F(3, 5),)), Case("tall", (F(5, 3),)),
                Case("transposed", (F(3, 4, view="T"),)), Case("batched", (F(2, 3, 3),))],
            variant=f"k{_k}")
    add(_n, (lambda n: lambda a: getattr(pz, n)(a, diagonal=2))(_n), (lambda r: lambda a: r(a, 2))(_r),
        [Case("square", (F(4, 4),))], variant="kwarg")

# ---- indexing ops (index tensors are int64 constants; repeated indices on purpose) ----
add("gather", lambda a, i: pz.gather(a, 1, i), lambda a, i: _gather(a, 1, i), [
    Case("dim1", (F(3, 4), I(3, 6, hi=4))),
    Case("smaller", (F(3, 4), I(2, 3, hi=4))),
    Case("transposed", (F(3, 4, view="T"), I(3, 5, hi=4))),
    Case("empty", (F(3, 4), I(3, 0, hi=4)))])
add("gather", lambda a, i: pz.gather(a, 0, i), lambda a, i: _gather(a, 0, i), [
    Case("dim0", (F(3, 4), I(5, 4, hi=3))), Case("3d", (F(2, 3, 4), I(3, 3, 4, hi=2)))],
    variant="dim0")
add("index_select", lambda a, i: pz.index_select(a, 0, i), lambda a, i: np.take(a, i, axis=0), [
    Case("dim0", (F(3, 4), I(5, hi=3))), Case("transposed", (F(3, 4, view="T"), I(4, hi=3))),
    Case("empty_index", (F(3, 4), I(0, hi=3)))])
add("index_select", lambda a, i: pz.index_select(a, 1, i), lambda a, i: np.take(a, i, axis=1), [
    Case("dim1", (F(3, 4), I(6, hi=4))), Case("3d", (F(2, 4, 3), I(3, hi=4)))], variant="dim1")
add("embedding", lambda i, w: pz.embedding(i, w), lambda i, w: w[i], [
    Case("2d_index", (I(2, 3, hi=5), F(5, 4))), Case("1d_index", (I(7, hi=5), F(5, 3))),
    Case("empty", (I(0, hi=5), F(5, 3))), Case("strided_weight", (I(4, hi=5), F(5, 3, view="slice")))])

# ---- further ops: tested when they appear in pyzen.ops.__all__ ----
add("clip", lambda a: pz.clip(a, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5),
    unary_cases(kinks=(-0.5, 0.5))[:4])
add("isfinite", lambda a: pz.isfinite(a), np.isfinite, unary_cases()[:3], grad=False, out="bool")
add("mm", lambda a, b: pz.mm(a, b), np.matmul, [
    Case("2d", (F(3, 4), F(4, 5))), Case("transposed", (F(3, 4, view="T"), F(4, 2))),
    Case("empty", (F(0, 4), F(4, 5)))], **_mm)
add("bmm", lambda a, b: pz.bmm(a, b), np.matmul, [
    Case("3d", (F(2, 3, 4), F(2, 4, 5))), Case("transposed", (F(2, 3, 4, view="T"), F(2, 4, 2)))], **_mm)
for _n, _r in [("amax", np.max), ("amin", np.min)]:
    add(_n, (lambda n: lambda a: getattr(pz, n)(a, dim=1))(_n), (lambda r: lambda a: r(a, axis=1))(_r),
        _dist_cases)
    add(_n, (lambda n: lambda a: getattr(pz, n)(a, dim=(0, 1), keepdim=True))(_n),
        (lambda r: lambda a: r(a, axis=(0, 1), keepdims=True))(_r), _dist_cases[1:2], variant="dims")
for _n, _r in [("all", np.all), ("any", np.any)]:
    add(_n, (lambda n: lambda a: getattr(pz, n)(a))(_n), _r,
        [Case("2d", (B(3, 4),)), Case("empty", (B(0, 3),)), Case("0d", (B(),))], grad=False, out="bool")
    add(_n, (lambda n: lambda a: getattr(pz, n)(a, dim=1))(_n), (lambda r: lambda a: r(a, axis=1))(_r),
        [Case("2d", (B(3, 2),))], variant="dim", grad=False, out="bool")
add("broadcast_to", lambda a: pz.broadcast_to(a, (2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)),
    [Case("row", (F(4),)), Case("col", (F(3, 1),)), Case("0d", (F(),))])
for _n in ("concat", "concatenate"):
    add(_n, (lambda n: lambda a, b: getattr(pz, n)([a, b], dim=1))(_n),
        lambda a, b: np.concatenate([a, b], 1), [Case("2d", (F(2, 3), F(2, 1)))])
add("narrow", lambda a: pz.narrow(a, 1, 1, 2), lambda a: a[:, 1:3],
    [Case("2d", (F(3, 4),)), Case("transposed", (F(3, 4, view="T"),))])
add("swapaxes", lambda a: pz.swapaxes(a, 0, -1), lambda a: np.swapaxes(a, 0, -1), [Case("3d", (F(2, 3, 4),))])
add("t", lambda a: pz.t(a), lambda a: a.T, [Case("2d", (F(3, 4),)), Case("1d", (F(3),))])
add("unbind", lambda a: tuple(pz.unbind(a, 1)), lambda a: tuple(a[:, i] for i in range(a.shape[1])),
    [Case("2d", (F(2, 3),))])
add("unflatten", lambda a: pz.unflatten(a, 1, (2, 3)), lambda a: a.reshape(a.shape[0], 2, 3),
    [Case("2d", (F(4, 6),))])
add("expand_as", lambda a, b: pz.expand_as(a, b), lambda a, b: np.broadcast_to(a, b.shape),
    [Case("col", (F(3, 1), F(3, 4)))], grad=True)
add("clone", lambda a: pz.clone(a), lambda a: a.copy(), unary_cases()[:4])

# ---- Tensor-method-only views (not in pyzen.ops.__all__) ----
add("Tensor.view", lambda a: a.view(2, 6), lambda a: a.reshape(2, 6),
    [Case("2d", (F(3, 4),))], method_only=True)
add("Tensor.view", lambda a: a.view(-1, 3), lambda a: a.reshape(-1, 3),
    [Case("3d", (F(2, 3, 3),)), Case("empty", (F(0, 3),))], variant="infer", method_only=True)
add("Tensor.expand", lambda a: a.expand(3, 4), lambda a: np.broadcast_to(a, (3, 4)),
    [Case("col", (F(3, 1),)), Case("row", (F(4),)), Case("0d", (F(),))], method_only=True)
add("Tensor.expand", lambda a: a.expand(2, -1, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
    [Case("keep", (F(3, 1),))], variant="minus1", method_only=True)
add("Tensor.repeat", lambda a: a.repeat(2, 3), lambda a: np.tile(a, (2, 3)),
    [Case("2d", (F(2, 3),)), Case("transposed", (F(2, 3, view="T"),))], method_only=True)
add("Tensor.repeat", lambda a: a.repeat(2, 1, 2), lambda a: np.tile(a, (2, 1, 2)),
    [Case("new_dim", (F(3, 2),))], variant="newdim", method_only=True)
add("Tensor.T", lambda a: a.T, lambda a: a.T,
    [Case("2d", (F(3, 4),)), Case("strided", (F(3, 4, view="slice"),))], method_only=True)
add("Tensor.mT", lambda a: a.mT, lambda a: np.swapaxes(a, -1, -2),
    [Case("3d", (F(2, 3, 4),)), Case("2d", (F(3, 4),))], method_only=True)
add("Tensor.contiguous", lambda a: a.contiguous(), lambda a: a,
    [Case("transposed", (F(3, 4, view="T"),))], method_only=True)


# ---- fused training ops ----
def _layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _sdpa(q, k, v, causal=False):
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    return _softmax(s, -1) @ v


def _cross_entropy(x, t, smoothing=0.0, ignore=None):
    logp = x - _logsumexp(x, 1, True)
    nll = -logp[np.arange(len(t)), np.where(t == ignore, 0, t)]
    loss = (1 - smoothing) * nll - smoothing * logp.mean(1)
    keep = t != ignore
    return (loss * keep).sum() / keep.sum()


add("layer_norm", lambda x, w, b: pz.layer_norm(x, (x.shape[-1],), w, b), _layer_norm, [
    Case("2d", (F(3, 5), F(5), F(5))), Case("3d", (F(2, 3, 4), F(4), F(4))),
    Case("size1_rows", (F(1, 7), F(7), F(7))), Case("empty", (F(0, 4), F(4), F(4))),
    Case("transposed", (F(4, 3, view="T"), F(3), F(3))), Case("strided", (F(2, 3, view="slice"), F(3), F(3)))])
add("scaled_dot_product_attention", lambda q, k, v: pz.scaled_dot_product_attention(q, k, v),
    _sdpa, [Case("4d", (F(1, 2, 3, 4), F(1, 2, 5, 4), F(1, 2, 5, 3))), Case("3d", (F(2, 4, 3), F(2, 4, 3), F(2, 4, 3))),
            Case("size1", (F(1, 1, 1, 2), F(1, 1, 1, 2), F(1, 1, 1, 2))),
            Case("transposed", (F(2, 3, 4, view="T"), F(2, 3, 4, view="T"), F(2, 3, 5)))], rtol32=1e-4)
add("scaled_dot_product_attention", lambda q, k, v: pz.scaled_dot_product_attention(q, k, v, is_causal=True),
    lambda q, k, v: _sdpa(q, k, v, True), [Case("causal", (F(1, 2, 4, 3), F(1, 2, 4, 3), F(1, 2, 4, 3)))],
    variant="causal", rtol32=1e-4)
add("cross_entropy", lambda x, t: pz.cross_entropy(x, t), _cross_entropy, [
    Case("2d", (F(4, 5, lo=-3, hi=3), I(4, hi=5))), Case("size1", (F(1, 3), I(1, hi=3))),
    Case("strided", (F(3, 4, view="slice"), I(3, hi=4)))])
add("cross_entropy", lambda x, t: pz.cross_entropy(x, t, label_smoothing=0.2, ignore_index=1),
    lambda x, t: _cross_entropy(x, t, 0.2, 1), [Case("smooth_ignore", (F(6, 4, lo=-3, hi=3), I(6, hi=4)))], variant="smooth")
add("topk", lambda a: pz.topk(a, 2, dim=1).values, lambda a: -np.sort(-a, axis=1)[:, :2], [
    Case("2d", (F(3, 5, gen="distinct"),)), Case("transposed", (F(3, 4, gen="distinct", view="T"),)),
    Case("empty_rows", (F(0, 4),))])


# ---- more layouts for the guaranteed ops: every one has a view, a size-0 and a size-1 case ----
def _extend(spec_id: str, *cases: Case) -> None:
    spec = next(s for s in TABLE if s.id == spec_id)
    spec.cases = spec.cases + list(cases)  # case lists are shared between specs: copy


def BV(*shape, view) -> Arg:
    return Arg(tuple(shape), kind="bool", view=view)


for _n in ("logical_and", "logical_or", "logical_xor"):
    _extend(_n, Case("views", (BV(3, 4, view="T"), BV(3, 4, view="slice"))))
_extend("logical_not", Case("strided", (BV(3, 4, view="slice"),)))
_extend("permute", Case("transposed", (F(2, 3, 4, view="T"),)), Case("size1", (F(1, 3, 1),)))
_extend("squeeze", Case("transposed", (F(1, 4, view="T"),)), Case("empty", (F(0, 1),)))
for _n in ("argmax-dim", "argmin-dim", "max-dim", "min-dim"):
    _extend(_n, Case("size1", (F(1, 4, gen="distinct"),)), Case("empty_rows", (F(0, 3),)))
_extend("chunk", Case("empty", (F(0, 7),)), Case("size1", (F(1, 7),)))
_extend("split", Case("empty", (F(4, 0),)), Case("size1", (F(1, 3),)))
_extend("stack", Case("empty", (F(0, 3), F(0, 3))), Case("size1", (F(1, 1), F(1, 1))))
_extend("std-dim", Case("empty", (F(0, 3),)), Case("size1", (F(1, 4),)))
_extend("var-dim", Case("size1", (F(1, 4),)))
for _n in ("tril-k0", "triu-k0", "tril-k1", "triu-k-1"):
    _extend(_n, Case("empty", (F(0, 3),)), Case("size1", (F(1, 4),)), Case("col", (F(4, 1),)))
_extend("cumsum", Case("size1", (F(1, 4),)), Case("0d_dim0", (F(3, 1),)))
_extend("embedding", Case("size1", (I(1, 1, hi=1), F(1, 3))))
_extend("flip", Case("size1", (F(1, 4),)))
_extend("gather", Case("size1", (F(1, 4), I(1, 2, hi=4))))
_extend("index_select", Case("size1", (F(1, 4), I(3, hi=1))))
for _n in ("logsumexp", "softmax", "log_softmax"):
    _extend(_n, Case("size1_rows", (F(1, 4),)), Case("size1_reduced", (F(3, 1),)))
_extend("transpose", Case("size1", (F(1, 4),)))


# --------------------------------------------------------------------------- helpers
def float_arg_positions(case: Case) -> list:
    return [i for i, a in enumerate(case.args) if a.kind == "float"]


def make_inputs(case: Case, dtype, rng: np.random.Generator, requires_grad: bool = False):
    """Build (pyzen leaves, NumPy float64 reference arrays) for ``case``.

    Float inputs are rounded to ``dtype`` first, so the reference sees exactly the
    values pyzen sees.  Views ("T", "slice") are NOT applied to the leaves; ``call``
    applies them, so gradients flow through the view too.
    """
    np_float = np.float32 if dtype == pyzen.float32 else np.float64
    leaves, refs = [], []
    for a in case.args:
        base = a.generate(rng)
        if a.kind == "float":
            base = base.astype(np_float)
            t = pyzen.tensor(base, dtype=dtype, requires_grad=requires_grad)
            refs.append(view_np(base.astype(np.float64), a.view))
        elif a.kind == "bool":
            t = pyzen.tensor(base, dtype=pyzen.bool)
            refs.append(view_np(base, a.view))
        else:
            t = pyzen.tensor(base, dtype=pyzen.int64)
            refs.append(view_np(base, a.view))
        leaves.append(t)
    return leaves, refs


def call(spec: OpSpec, case: Case, leaves):
    """Apply each input's view, then the op."""
    return spec.fn(*[view_pz(t, a.view) for t, a in zip(leaves, case.args)])


def out_kinds(spec: OpSpec, n_outputs: int) -> tuple:
    if isinstance(spec.out, tuple):
        return spec.out
    return (spec.out,) * n_outputs


def as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def is_empty_case(case: Case) -> bool:
    return any(0 in a.shape for a in case.args)


def wants_grad(spec: OpSpec, case: Case) -> bool:
    flag = spec.grad if case.grad is None else case.grad
    return bool(flag) and bool(float_arg_positions(case))
