"""Every public differentiable op: `__all__` is the table the tests iterate, so an op added
here without a test entry fails the suite."""
from .elementwise import (
    abs, add, clamp, clip, cos, div, eq, equal, exp, ge, gelu, gt, isfinite, le, log, logical_and,
    logical_not, logical_or, logical_xor, lt, masked_fill, maximum, minimum, mul, ne, neg, pow,
    relu, rsqrt, sigmoid, silu, sin, sqrt, sub, tanh, where,
)
from .fused import cross_entropy, dropout, layer_norm, scaled_dot_product_attention
from .indexing import embedding, gather, getitem, index_put, index_select
from .linalg import bmm, linear, matmul, mm
from .reduction import (
    all, amax, amin, any, argmax, argmin, cumsum, log_softmax, logsumexp, max, mean, min, prod,
    softmax, std, sum, topk, var,
)
from .shape import (
    broadcast_to, cat, chunk, clone, concat, concatenate, contiguous, expand, expand_as, flatten,
    flip, narrow, permute, repeat, reshape, split, squeeze, stack, swapaxes, t, transpose, tril,
    triu, unbind, unflatten, unsqueeze, view,
)

__all__ = [
    # elementwise
    "add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos",
    "tanh", "sigmoid", "relu", "gelu", "silu", "maximum", "minimum", "clamp", "where",
    "masked_fill", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
    "logical_not", "logical_xor",
    # reductions
    "sum", "mean", "var", "std", "max", "min", "argmax", "argmin", "prod", "logsumexp",
    "softmax", "log_softmax", "cumsum",
    # shape and indexing
    "reshape", "flatten", "transpose", "permute", "squeeze", "unsqueeze", "cat", "stack",
    "split", "chunk", "flip", "tril", "triu", "gather", "index_select", "embedding",
    # linear algebra
    "matmul",
    # fused training ops
    "layer_norm", "scaled_dot_product_attention", "cross_entropy", "topk",
]
