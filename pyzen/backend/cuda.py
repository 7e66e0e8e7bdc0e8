"""The CUDA backend: arrays are `CudaArray`s (cuda_array.py) over pyzen._cuda device
memory; the same primitive names and semantics as backend/cpu.py. What CUDA cannot do yet
(indexing with several index arrays) raises NotImplementedError naming it: never a silent
host round trip.
"""
from __future__ import annotations

import builtins
import contextlib
import math
import sys
from typing import Any, Sequence

import numpy as np

from .. import _cuda
from .._device import device as _device
from ..random import default_generator
from . import cuda_array as ca
from .cuda_array import (  # noqa: F401  (primitives re-exported under the CPU table's names)
    CudaArray,
    all,
    amax,
    amin,
    any,
    arange,
    argmax,
    argmin,
    asarray,
    astype,
    broadcast_to,
    copy,
    cumprod,
    cumsum,
    empty,
    expand_dims,
    flip,
    full,
    index_add,
    is_contiguous,
    matmul,
    may_share_memory,
    ones,
    prod,
    reshape,
    squeeze,
    sum,
    swapaxes,
    take,
    take_along_axis,
    to_numpy,
    transpose,
    where,
    zeros,
)

CudaArray.__pyzen_backend__ = sys.modules[__name__]  # how backend.of() finds this module
_CUDA0 = _device("cuda:0")
broadcast_shapes = np.broadcast_shapes


def device_of(x: CudaArray) -> _device:
    return _CUDA0



# ---- creation and conversion ----
def eye(n: int, m: int | None = None, dtype: Any = np.float64) -> CudaArray:
    m = n if m is None else m
    rows = ca.reshape(arange(n, dtype=np.int64), (n, 1))
    return astype(rows == arange(m, dtype=np.int64), dtype)


def concatenate(xs: Sequence[CudaArray], axis: int = 0) -> CudaArray:
    xs = list(xs)
    dtype = np.result_type(*[x.dtype for x in xs])
    axis = ca._axis(axis, xs[0].ndim)
    shape = list(xs[0].shape)
    shape[axis] = builtins.sum(x.shape[axis] for x in xs)
    out = empty(shape, dtype)
    start = 0
    for x in xs:
        n = x.shape[axis]
        index = (slice(None),) * axis + (slice(start, start + n),)
        ca.setitem(out, index, x)
        start += n
    return out


def errstate() -> Any:
    return contextlib.nullcontext()  # GPU arithmetic raises no floating-point warnings


# ---- elementwise ----
def _binary(name: str) -> Any:
    def fn(a: Any, b: Any) -> CudaArray:
        return ca.binary(name, a, b)

    fn.__name__ = name
    return fn


def _unary(name: str) -> Any:
    def fn(x: CudaArray) -> CudaArray:
        return ca.unary(name, x)

    fn.__name__ = name
    return fn


add, subtract, multiply, power = (_binary(n) for n in ("add", "subtract", "multiply", "power"))
maximum, minimum = _binary("maximum"), _binary("minimum")
equal, not_equal, less, less_equal, greater, greater_equal = (
    _binary(n) for n in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
)
logical_and, logical_or, logical_xor = (_binary(n) for n in ("logical_and", "logical_or", "logical_xor"))
true_divide = ca.true_divide
negative, absolute, sign, exp, log, sqrt, sin, cos, tanh = (
    _unary(n) for n in ("negative", "absolute", "sign", "exp", "log", "sqrt", "sin", "cos", "tanh")
)
logical_not, isfinite, sigmoid = _unary("logical_not"), _unary("isfinite"), _unary("sigmoid")


def clip(x: CudaArray, lo: Any, hi: Any) -> CudaArray:
    out = x if lo is None else maximum(x, lo)
    return out if hi is None else minimum(out, hi)


def gelu(x: CudaArray, approximate: str) -> CudaArray:
    return ca.unary("gelu_tanh" if approximate == "tanh" else "gelu", x)


def gelu_backward(g: CudaArray, x: CudaArray, approximate: str) -> CudaArray:
    g = broadcast_to(astype(g, x.dtype, False), x.shape)
    return ca.binary("gelu_tanh_backward" if approximate == "tanh" else "gelu_backward", g, x)


# ---- reductions ----
def var(x: CudaArray, axis: tuple | None, correction: float, keepdims: bool) -> CudaArray:
    n = x.size if axis is None else math.prod(x.shape[a] for a in axis)
    d = x - ca.mean(x, axis, True)
    return ca.sum(d * d, axis, keepdims) / x.dtype.type(max(n - correction, 0))


def softmax(x: CudaArray, axis: int) -> CudaArray:
    return ca.softmax_last(x, axis, False)


def log_softmax(x: CudaArray, axis: int) -> CudaArray:
    return ca.softmax_last(x, axis, True)


def logsumexp(x: CudaArray, axis: tuple | int | None, keepdims: bool) -> CudaArray:
    m = amax(x, axis=axis, keepdims=True)
    m = where(isfinite(m), m, 0)
    out = log(ca.sum(exp(x - m), axis, True)) + m
    return out if keepdims else squeeze(out, axis)


def argsort(x: CudaArray, axis: int = -1, kind: str | None = None) -> CudaArray:
    """The stable ascending order along `axis`, NaN last, as np.argsort(kind="stable")
    (whatever `kind`): a bitonic sort of (row, value, position) keys on the device."""
    axis = ca._axis(axis, x.ndim)
    perm = [d for d in range(x.ndim) if d != axis] + [axis]
    moved = ca.contiguous(transpose(x, perm))
    n = x.shape[axis]
    rows = reshape(moved, (math.prod(moved.shape[:-1]), n))
    out = empty(rows.shape, np.int64)
    _cuda.argsort(out._a, rows._a)
    return transpose(reshape(out, moved.shape), list(np.argsort(perm)))


def ones_like_axis(x: CudaArray, axis: int) -> CudaArray:
    shape = list(x.shape)
    shape[axis] = 1
    return ones(shape, x.dtype)


def gather(x: CudaArray, index: Any, axis: int) -> CudaArray:
    """out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (PyTorch's gather)."""
    return take_along_axis(x, index, axis)


def scatter_add_along_axis(shape: tuple, index: Any, values: Any, axis: int) -> CudaArray:
    """zeros(shape) with values added at `index` along `axis` (repeated indices add up, in an
    order that can change between runs: atomics)."""
    values = values if isinstance(values, CudaArray) else asarray(values)
    out = zeros(shape, values.dtype)
    idx = ca._index_array(index)
    ca._scatter(out, idx, values, ca._axis(axis, len(shape)), True)
    return out


def sum_to(g: CudaArray, shape: tuple) -> CudaArray:
    """Reduce a broadcast gradient back to `shape`."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    if axes:
        g = ca.sum(g, axes, True)
    return reshape(g, shape)


# ---- shape and indexing ----
def tile(x: CudaArray, reps: Sequence[int]) -> CudaArray:
    reps = tuple(reps)
    shape = (1,) * (len(reps) - x.ndim) + x.shape
    reps = (1,) * (len(shape) - len(reps)) + reps
    spread = reshape(x, [v for s in shape for v in (1, s)])
    tiled = broadcast_to(spread, [v for r, s in zip(reps, shape) for v in (r, s)])
    return reshape(copy(tiled), [r * s for r, s in zip(reps, shape)])


def _triangle(x: CudaArray, k: int, upper: bool) -> CudaArray:
    rows = reshape(arange(x.shape[-2], dtype=np.int64), (-1, 1))
    cols = arange(x.shape[-1], dtype=np.int64)
    keep = (cols - rows >= k) if upper else (cols - rows <= k)
    return where(keep, x, x.dtype.type(0))


def tril(x: CudaArray, k: int = 0) -> CudaArray:
    return _triangle(x, k, False)


def triu(x: CudaArray, k: int = 0) -> CudaArray:
    return _triangle(x, k, True)


def getitem(x: CudaArray, index: Any) -> CudaArray:
    return ca.getitem(x, index)


def setitem(x: CudaArray, index: Any, value: Any) -> None:
    ca.setitem(x, index, value)


# ---- fused training ops: composed from the generic kernels (cuda_fused.py) ----
from .cuda_fused import (  # noqa: E402,F401
    adamw_step,
    attention_backward,
    attention_forward,
    cross_entropy_backward,
    cross_entropy_forward,
    embedding_backward,
    foreach_mul_,
    foreach_sum_squares,
    layer_norm_backward,
    layer_norm_forward,
    round_bf16,
)


# ---- random: Philox on the device, keyed from pyzen's generator ----
def _key() -> tuple[int, int]:
    """A fresh (seed, offset) from pyzen's CPU generator: pyzen.manual_seed reproduces CUDA draws."""
    seed, offset = default_generator._np.integers(0, 2**64, size=2, dtype=np.uint64)
    return int(seed), int(offset)


def rand(shape: Sequence[int], dtype: Any) -> CudaArray:
    out = empty(shape, dtype)
    _cuda.random_uniform(out._a, *_key())
    return out


def randn(shape: Sequence[int], dtype: Any) -> CudaArray:
    out = empty(shape, dtype)
    _cuda.random_normal(out._a, *_key())
    return out


def randint(low: int, high: int, shape: Sequence[int]) -> CudaArray:
    out = empty(shape, np.int64)
    _cuda.random_int(out._a, int(low), int(high), *_key())
    return out


def _draw(p: CudaArray, samples: int) -> CudaArray:
    """(R, samples) indices drawn with replacement from (R, C) float64 weights by inverse
    CDF: the number of categories whose running total is <= a uniform draw times the
    row's total (a zero weight is never drawn)."""
    r, c = p.shape
    cdf = ca.cumsum(p, -1)
    u = rand((r, samples), np.float64) * cdf[:, c - 1 :]
    below = ca.astype(ca.expand_dims(cdf, 1) <= ca.expand_dims(u, 2), np.int64)
    return minimum(ca.sum(below, -1), c - 1)


def multinomial(probs: CudaArray, num_samples: int, replacement: bool) -> CudaArray:
    """Indices drawn from each row of (R, C) non-negative weights (checked by the caller),
    on the device with pyzen's Philox stream; without replacement a draw at a time, each
    drawn category's weight then set to 0."""
    p = ca.astype(probs, np.float64)
    if replacement:
        return _draw(p, num_samples)
    columns = ca.arange(p.shape[1], dtype=np.int64)
    draws = []
    for _ in range(num_samples):
        draws.append(_draw(p, 1))
        p = where(columns == draws[-1], 0.0, p)
    return concatenate(draws, 1) if draws else empty((p.shape[0], 0), np.int64)


def randperm(n: int) -> CudaArray:
    """A random permutation of 0..n-1: the order of n uniform float64 draws."""
    return argsort(rand((n,), np.float64))
