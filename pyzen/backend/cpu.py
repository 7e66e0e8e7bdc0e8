"""The CPU backend: arrays are NumPy ndarrays. NumPy does what it does well; pyzen._C
does what NumPy does slowly or cannot fuse (matmul, attention, layer norm, cross-entropy,
GELU, AdamW)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import _C
from ..random import default_generator

# ---- creation and conversion ----
zeros = np.zeros
ones = np.ones
full = np.full
empty = np.empty
arange = np.arange
eye = np.eye
concatenate = np.concatenate


def asarray(data: Any, dtype: np.dtype | None = None) -> np.ndarray:
    return np.asarray(data, dtype=dtype)


def copy(x: np.ndarray) -> np.ndarray:
    return np.array(x, copy=True, order="C")


def astype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return x.astype(dtype)


def to_numpy(x: np.ndarray) -> np.ndarray:
    return x


def is_contiguous(x: np.ndarray) -> bool:
    return x.flags.c_contiguous


# ---- elementwise ----
def errstate() -> Any:
    return np.errstate(all="ignore")



add = np.add
subtract = np.subtract
multiply = np.multiply
true_divide = np.true_divide
power = np.power
negative = np.negative
absolute = np.abs
sign = np.sign
exp = np.exp
log = np.log
sqrt = np.sqrt
sin = np.sin
cos = np.cos
tanh = np.tanh
maximum = np.maximum
minimum = np.minimum
clip = np.clip
where = np.where
equal = np.equal
not_equal = np.not_equal
less = np.less
less_equal = np.less_equal
greater = np.greater
greater_equal = np.greater_equal
logical_and = np.logical_and
logical_or = np.logical_or
logical_xor = np.logical_xor
logical_not = np.logical_not
isfinite = np.isfinite


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number never overflows: split by sign.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    return _C.gelu_forward(np.asarray(x, order="C"), approximate)


def gelu_backward(g: np.ndarray, x: np.ndarray, approximate: str) -> np.ndarray:
    g = np.asarray(np.broadcast_to(g, x.shape), dtype=x.dtype, order="C")
    return _C.gelu_backward(g, np.asarray(x, order="C"), approximate)


# ---- reductions ----
def var(x: np.ndarray, axis: tuple | None, correction: float, keepdims: bool) -> np.ndarray:
    n = x.size if axis is None else math.prod(x.shape[a] for a in axis)
    # inf - inf in the deviations and n <= correction give inf or nan, silently, like PyTorch
    with np.errstate(all="ignore"):
        mean = np.sum(x, axis=axis, keepdims=True) / x.dtype.type(max(n, 1))  # x.mean warns on an empty axis
        d = x - mean
        return np.true_divide(np.sum(d * d, axis=axis, keepdims=keepdims), max(n - correction, 0))


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    # Shifted by the max even where it is infinite: a row holding +inf (or only -inf) is nan, like PyTorch.
    with np.errstate(all="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def logsumexp(x: np.ndarray, axis: tuple | int | None, keepdims: bool) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(all="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    # (x - max) - log(sum): exact near the max, where x - logsumexp(x) carries lse's rounding.
    with np.errstate(all="ignore"):
        s = x - np.max(x, axis=axis, keepdims=True)
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))



sum = np.sum
prod = np.prod
amax = np.max
amin = np.min
argmax = np.argmax
argmin = np.argmin
argsort = np.argsort
cumsum = np.cumsum
cumprod = np.cumprod
all = np.all
any = np.any
take_along_axis = np.take_along_axis


def ones_like_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """Ones shaped like `x` with `axis` of size 1."""
    shape = list(x.shape)
    shape[axis] = 1
    return np.ones(shape, x.dtype)


def _along_axis(index: np.ndarray, axis: int) -> tuple:
    idx = list(np.indices(index.shape, sparse=True))
    idx[axis] = index
    return tuple(idx)


def gather(x: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (PyTorch's gather)."""
    return x[_along_axis(index, axis)]


def scatter_add_along_axis(shape: tuple, index: np.ndarray, values: np.ndarray, axis: int) -> np.ndarray:
    """zeros(shape) with values added at `index` along `axis` (repeated indices add up)."""
    out = np.zeros(shape, values.dtype)
    np.add.at(out, _along_axis(index, axis), np.broadcast_to(values, index.shape))
    return out


def sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Reduce a broadcast gradient back to `shape`."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


# ---- shape and indexing ----
reshape = np.reshape
squeeze = np.squeeze
expand_dims = np.expand_dims
transpose = np.transpose
swapaxes = np.swapaxes
broadcast_shapes = np.broadcast_shapes
broadcast_to = np.broadcast_to
flip = np.flip
tile = np.tile
tril = np.tril
triu = np.triu
take = np.take


def getitem(x: np.ndarray, index: Any) -> np.ndarray:
    return x[index]


def setitem(x: np.ndarray, index: Any, value: Any) -> None:
    x[index] = value


def index_add(out: np.ndarray, index: Any, values: np.ndarray) -> None:
    """out[index] += values, with repeated indices adding up."""
    np.add.at(out, index, values)


def embedding_backward(g: np.ndarray, index: np.ndarray, num_rows: int) -> np.ndarray:
    """The gradient of rows picked by `index` (any shape) from a (num_rows, ...) array: g
    (index.shape + row shape) summed into each row, in position order."""
    out = np.zeros((num_rows,) + g.shape[index.ndim:], g.dtype)
    np.add.at(out, index, g)
    return out


# ---- matmul ----
def matmul(a: np.ndarray, b: np.ndarray, bf16: bool = False, bias: np.ndarray | None = None) -> np.ndarray:
    """a: (..., M, K), b: (..., K, N) with equal batch shapes (already broadcast), plus an
    optional (N,) bias of their dtype added to every row (inside the kernel, no extra pass).
    bf16: float32 operands rounded to bfloat16 (autocast) and float32 accumulation: the AMX
    or AVX512-BF16 kernel (_C.matmul_bf16) where the CPU has one, else the float32 kernel
    on rounded copies."""
    native_bf16 = bf16 and a.dtype == np.float32 and _C.bf16_path() != "float32"
    if bf16 and not native_bf16:
        a, b = round_bf16(a), round_bf16(b)
    if a.dtype.kind != "f":
        out = np.matmul(a, b)
        return out if bias is None else out + bias
    batch = a.shape[:-2]
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    nb = math.prod(batch)  # not -1: NumPy cannot infer it when a size is 0
    kernel = _C.matmul_bf16 if native_bf16 else _C.matmul
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=a.dtype)
    out = kernel(a.reshape((nb, m, k)), b.reshape((nb, k, n)), bias)
    return out.reshape(batch + (m, n))


# ---- fused training ops (native kernels in pyzen._C: csrc/kernels/{layer_norm,cross_entropy,adamw}.cpp) ----
def _row_param(p: np.ndarray | None, dtype: np.dtype) -> np.ndarray | None:
    """A layer norm weight/bias as a C-contiguous array of the input's dtype (or None)."""
    return None if p is None else np.asarray(p, dtype=dtype, order="C")


def layer_norm_forward(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float) -> tuple:
    """Normalise over the last dim. Returns (out, mean, rstd); mean and rstd have shape x.shape[:-1]."""
    x = np.asarray(x, order="C")
    return _C.layer_norm_forward(x, _row_param(weight, x.dtype), _row_param(bias, x.dtype), float(eps))


def layer_norm_backward(g: np.ndarray, x: np.ndarray, weight: np.ndarray | None, mean: np.ndarray, rstd: np.ndarray, need_bias: bool) -> tuple:
    """(dx, dweight or None, dbias or None) for layer_norm_forward."""
    x = np.asarray(x, order="C")
    g = np.asarray(np.broadcast_to(g, x.shape), dtype=x.dtype, order="C")
    mean = np.asarray(mean, dtype=x.dtype, order="C")
    rstd = np.asarray(rstd, dtype=x.dtype, order="C")
    return _C.layer_norm_backward(g, x, _row_param(weight, x.dtype), mean, rstd, bool(need_bias))


def _attention_operands(*arrays: np.ndarray, mask: np.ndarray | None) -> tuple:
    """q, k, v (and grad, out) broadcast to one batch shape as views the kernel can read
    (unit stride along the last dim, else a copy), and the mask broadcast (stride 0, no copy)
    to that batch shape + (Tq, Tk): the layout _C.attention_forward/backward accepts."""
    lead = np.broadcast_shapes(*(x.shape[:-2] for x in arrays), () if mask is None else mask.shape[:-2])
    out = []
    for x in arrays:
        x = np.broadcast_to(x, lead + x.shape[-2:])
        if (x.shape[-1] > 1 and x.strides[-1] != x.itemsize) or not x.flags.aligned:
            x = np.asarray(x, order="C")
        out.append(x)
    if mask is not None:
        q = arrays[0]
        if mask.dtype != np.bool_ and mask.dtype != q.dtype:
            mask = mask.astype(q.dtype)
        mask = np.broadcast_to(mask, lead + (q.shape[-2], arrays[1].shape[-2]))
    return (*out, mask)


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 x rounded to the nearest bfloat16 (ties to even), as float32; nan stays nan
    (_C.round_bf16: one native pass)."""
    return _C.round_bf16(np.ascontiguousarray(x, np.float32)).reshape(np.shape(x))


def _amx_attention(bf16: bool, q: np.ndarray, v: np.ndarray, mask: np.ndarray | None) -> bool:
    """Whether an autocast attention call runs on AMX tiles: the amx path, float32, no mask,
    head dims up to 256 (_C.attention_forward_bf16 / attention_backward_bf16)."""
    return (bf16 and mask is None and q.dtype == np.float32 and _C.bf16_path() == "amx"
            and q.shape[-1] <= 256 and v.shape[-1] <= 256)


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None, is_causal: bool, scale: float,
                      bf16: bool = False) -> tuple:
    """softmax(q k^T * scale + mask) v over (..., T, D) arrays. Returns (out, lse), lse of shape (..., Tq).

    Native flash-style kernel (_C.attention_forward): no (Tq x Tk) matrix is built. mask is
    bool (True = attend) or additive, broadcastable to (..., Tq, Tk); is_causal masks key
    j > query i. Fully masked rows give NaN output and lse = -inf, like PyTorch. bf16: q, k,
    v (float32) rounded to bfloat16 (autocast), float32 accumulation: on AMX tiles where the
    CPU has them (no mask, head dims up to 256; the probabilities are rounded too, as on
    CUDA), else the float32 kernel on rounded copies."""
    amx = _amx_attention(bf16, q, v, mask)
    if bf16 and not amx:
        q, k, v = round_bf16(q), round_bf16(k), round_bf16(v)
    q, k, v, mask = _attention_operands(q, k, v, mask=mask)
    if amx:  # AMX tiles round q, k, v (and the probabilities) themselves
        return _C.attention_forward_bf16(q, k, v, bool(is_causal), float(scale))
    return _C.attention_forward(q, k, v, mask, bool(is_causal), float(scale))


def attention_backward(g: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray, out: np.ndarray, lse: np.ndarray, mask: np.ndarray | None, is_causal: bool, scale: float,
                       bf16: bool = False) -> tuple:
    """(dq, dk, dv) for attention_forward, recomputing the probabilities from lse.

    Gradients have the broadcast batch shape (the autograd engine sums them back to each
    input's shape). Fully masked rows contribute nothing (zero gradients, not NaN). bf16:
    g, q, k, v rounded as in the forward (the gradient passes the rounding straight through),
    on AMX tiles when the forward ran there."""
    amx = _amx_attention(bf16, q, v, mask)
    if bf16 and not amx:
        g, q, k, v = round_bf16(g), round_bf16(q), round_bf16(k), round_bf16(v)
    q, k, v, g, out, mask = _attention_operands(q, k, v, g, out, mask=mask)
    lse = np.broadcast_to(lse, q.shape[:-1])
    if amx:
        return _C.attention_backward_bf16(g, q, k, v, out, lse, bool(is_causal), float(scale))
    return _C.attention_backward(g, q, k, v, out, lse, mask, bool(is_causal), float(scale))


def cross_entropy_forward(logits: np.ndarray, target: np.ndarray, ignore_index: int, label_smoothing: float) -> tuple:
    """Per-row losses (0 where target == ignore_index) and each row's logsumexp, for (N, C) logits."""
    logits = np.asarray(logits, order="C")
    target = np.asarray(target, dtype=np.int64, order="C")
    return _C.cross_entropy_forward(logits, target, int(ignore_index), float(label_smoothing))


def cross_entropy_backward(g: np.ndarray, logits: np.ndarray, target: np.ndarray, lse: np.ndarray, ignore_index: int, label_smoothing: float) -> np.ndarray:
    """d(sum_i g_i * loss_i)/d(logits) for cross_entropy_forward."""
    logits = np.asarray(logits, order="C")
    g = np.asarray(np.broadcast_to(g, logits.shape[:1]), dtype=logits.dtype, order="C")
    lse = np.asarray(lse, dtype=logits.dtype, order="C")
    target = np.asarray(target, dtype=np.int64, order="C")
    return _C.cross_entropy_backward(g, logits, target, lse, int(ignore_index), float(label_smoothing))


def adamw_step(
    params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, max_exp_avg_sqs: list | None, steps: list,
    *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool, maximize: bool,
) -> None:
    """One Adam (decoupled=False) or AdamW step over every parameter, in place. `steps` holds
    each parameter's step count after this step; max_exp_avg_sqs is given for amsgrad.
    One native call for all parameters; params and states must be C-contiguous (ValueError
    otherwise: they are updated in place), grads are read as C-contiguous copies if needed."""
    grads = [np.asarray(g, dtype=p.dtype if isinstance(p, np.ndarray) else None, order="C") for p, g in zip(params, grads)]
    _C.adamw_step(
        list(params), grads, list(exp_avgs), list(exp_avg_sqs), None if max_exp_avg_sqs is None else list(max_exp_avg_sqs),
        [float(s) for s in steps],
        lr=float(lr), beta1=float(beta1), beta2=float(beta2), eps=float(eps),
        weight_decay=float(weight_decay), decoupled=bool(decoupled), maximize=bool(maximize),
    )


# ---- random (pyzen's own generator, so seeds reproduce whatever NumPy's global state is) ----
def foreach_sum_squares(xs: Sequence[np.ndarray]) -> np.ndarray:
    """Each array's sum of squares, accumulated in float64 (pairwise: the same on every run)."""
    return np.array([np.sum(np.square(x), dtype=np.float64) for x in xs], np.float64)


def foreach_mul_(xs: Sequence[np.ndarray], scale: Any) -> None:
    """Every array times `scale` (a 0-d array), in place."""
    for x in xs:
        x *= scale


def rand(shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    return default_generator._np.random(shape, dtype=np.float64).astype(dtype, copy=False)


def randn(shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    return default_generator._np.standard_normal(shape, dtype=np.float64).astype(dtype, copy=False)


def randint(low: int, high: int, shape: Sequence[int]) -> np.ndarray:
    return default_generator._np.integers(low, high, shape, dtype=np.int64)


def multinomial(probs: np.ndarray, num_samples: int, replacement: bool) -> np.ndarray:
    """Indices drawn from each row of (R, C) non-negative weights."""
    out = np.empty((probs.shape[0], num_samples), np.int64)
    for r, row in enumerate(probs.astype(np.float64)):
        out[r] = default_generator._np.choice(row.shape[0], num_samples, replace=replacement, p=row / row.sum())
    return out


def randperm(n: int) -> np.ndarray:
    return default_generator._np.permutation(n).astype(np.int64)
