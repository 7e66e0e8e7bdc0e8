"""`pyzen.nn.functional`: the functional forms of the layers and losses."""
from __future__ import annotations

from .. import _dtype, backend
from .._tensor import Tensor
from ..ops import (
    embedding as _embedding, exp, gelu, linear, log, log_softmax, matmul, maximum, mean, relu,
    sigmoid, silu, softmax, sum, tanh, where,
)
from ..ops._util import check_index
from ..ops.fused import BinaryCrossEntropy, classes_last, cross_entropy, dropout, layer_norm, scaled_dot_product_attention  # noqa: F401
from ..ops.indexing import gather

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout",
    "embedding", "gelu", "l1_loss", "layer_norm", "linear", "log_softmax", "mse_loss",
    "nll_loss", "one_hot", "relu", "scaled_dot_product_attention", "sigmoid", "silu", "softmax",
    "tanh",
]


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` picked by `input`; the padding_idx row receives no gradient."""
    return _embedding(input, weight, padding_idx)


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(input: Tensor, target: Tensor, op: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise RuntimeError(f"{op}: input shape {tuple(input.shape)} and target shape {tuple(target.shape)} differ")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


def nll_loss(input: Tensor, target: Tensor, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """-input[i, target[i]] for log-probabilities (N, C), (N, C, d1, ...) or (C,); entries
    whose target is ignore_index are skipped."""
    rows, t, out_shape = classes_last(input, target, ignore_index, "nll_loss")
    keep = t != ignore_index
    safe = Tensor._make(where(Tensor._make(keep), Tensor._make(t), 0)._data.reshape(-1, 1))
    picked = -gather(rows, 1, safe).reshape(-1) * Tensor._make(keep.astype(rows._data.dtype))
    if reduction == "mean":
        return sum(picked) / int(keep.sum()) if keep.any() else sum(picked) * float("nan")
    if reduction == "none":
        return picked.reshape(out_shape)
    return _reduce(picked, reduction, "nll_loss")


def binary_cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)); each log is clamped at -100 like PyTorch, so p of
    exactly 0 or 1 gives a finite loss and gradient."""
    _same_shape(input, target, "binary_cross_entropy")
    if input.numel() and (float(input.min()) < 0 or float(input.max()) > 1):
        raise ValueError(f"binary_cross_entropy: input values must be in [0, 1], got range [{float(input.min())}, {float(input.max())}]")
    return _reduce(BinaryCrossEntropy.apply(input, target), reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """BCE on logits, computed stably: max(x, 0) - x t + log(1 + exp(-|x|)) (with pos_weight)."""
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    softplus_neg = log(1 + exp(-input.abs())) + maximum(-input, Tensor._make(input._data.dtype.type(0)))  # log(1 + e^-x)
    if pos_weight is None:
        loss = (1 - target) * input + softplus_neg
    else:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus_neg
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding with a trailing dim of num_classes (max + 1 when -1)."""
    t = check_index(tensor, "one_hot")
    if t.size and t.min() < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(t.min())}")
    n = int(t.max()) + 1 if num_classes == -1 and t.size else num_classes
    if num_classes == -1 and not t.size:
        raise RuntimeError("one_hot: cannot infer num_classes from an empty tensor")
    if t.size and int(t.max()) >= n:
        raise ValueError(f"one_hot: class value {int(t.max())} is out of range for num_classes={n}")
    return Tensor._make((t[..., None] == backend.of(t).arange(n)).astype(_dtype.int64.np))
