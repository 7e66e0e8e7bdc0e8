"""Indexing: `x[i]`, `x[i] = v`, gather, index_select and the embedding lookup, each with a
backward that scatter-adds (repeated indices add up)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ..autograd.function import Function
from ._util import be, check_bounds, check_index, dim_arg


def convert_index(index: Any) -> tuple[Any, bool]:
    """A backend index from a Python one, and whether it is basic (ints, slices, None, ...)."""
    items = index if isinstance(index, tuple) else (index,)
    out, basic = [], True
    for item in items:
        if isinstance(item, Tensor):
            if item.ndim == 0 and item.dtype.name == "int64":
                item = int(item.item())
            else:
                item = item._data
                basic = False
        elif isinstance(item, (list, np.ndarray)):
            item = np.asarray([i.item() if isinstance(i, Tensor) else i for i in item] if isinstance(item, list) else item)
            if item.dtype == object or (item.size and item.dtype.kind not in "iub"):
                raise IndexError(f"index: lists used as indices must hold ints or bools, got {item.dtype}")
            if item.size == 0:
                item = item.astype(np.int64)
            basic = False
        elif isinstance(item, bool):
            item = np.asarray(item)
            basic = False
        elif isinstance(item, float):
            raise IndexError(f"index: only integers, slices, None, Ellipsis, lists and integer or bool tensors are valid indices, got {item!r}")
        out.append(item)
    if basic and not any(item is Ellipsis for item in out):
        out.append(Ellipsis)  # makes NumPy return a 0-d view instead of a scalar copy
    return tuple(out), basic


def _index(x: Any, index: Any) -> Any:
    try:
        return be(x).getitem(x, index)
    except IndexError as e:
        raise IndexError(f"index: {e} (tensor shape {tuple(x.shape)})") from None


class GetItem(Function):
    _raw = True
    _view = True

    @staticmethod
    def forward(ctx, x, index, basic):
        ctx.shape, ctx.dtype, ctx.index, ctx.basic = x.shape, x.dtype, index, basic
        return _index(x, index)

    @staticmethod
    def backward(ctx, g):
        bx = be(g)
        out = bx.zeros(ctx.shape, ctx.dtype)
        if ctx.basic:
            bx.setitem(out, ctx.index, g)  # basic indexing never repeats an element
        else:
            bx.index_add(out, ctx.index, g)
        return out, None, None


class IndexPut(Function):
    """out = x with out[index] = value; the out-of-place half of `x[index] = value`."""

    _raw = True

    @staticmethod
    def forward(ctx, x, value, index):
        bx = be(x)
        out = bx.copy(x)
        try:
            bx.setitem(out, index, value)
        except ValueError:
            shape = getattr(value, "shape", ())
            raise RuntimeError(f"setitem: value of shape {tuple(shape)} cannot be assigned to the indexed region") from None
        except IndexError as e:
            raise IndexError(f"setitem: {e} (tensor shape {tuple(x.shape)})") from None
        ctx.index = index
        return out

    @staticmethod
    def backward(ctx, g):
        bx = be(g)
        gx = bx.copy(g)
        bx.setitem(gx, ctx.index, 0)
        return gx, bx.getitem(g, ctx.index), None


class Gather(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.shape, ctx.dim, ctx.index = x.shape, dim, index
        return be(x).gather(x, index, dim)

    @staticmethod
    def backward(ctx, g):
        return be(g).scatter_add_along_axis(ctx.shape, ctx.index, g, ctx.dim), None, None


class IndexSelect(Function):
    """Rows of `x` along `dim` picked by an index of any shape (index_select, embedding)."""

    _raw = True

    @staticmethod
    def forward(ctx, x, dim, index, padding_idx=None):
        ctx.shape, ctx.dtype, ctx.dim, ctx.index, ctx.padding_idx = x.shape, x.dtype, dim, index, padding_idx
        return be(x).take(x, index, axis=dim)

    @staticmethod
    def backward(ctx, g):
        bx = be(g)
        if ctx.dim == 0:  # embedding: a deterministic sum on every device
            out = bx.embedding_backward(g, ctx.index, ctx.shape[0])
        else:
            out = bx.zeros(ctx.shape, ctx.dtype)
            bx.index_add(out, (slice(None),) * ctx.dim + (ctx.index,), g)
        if ctx.padding_idx is not None:  # the padding row is never trained
            bx.setitem(out, (slice(None),) * ctx.dim + (ctx.padding_idx,), 0)
        return out, None, None


# ---- public functions ----
def getitem(input: Tensor, index: Any) -> Tensor:
    idx, basic = convert_index(index)
    return GetItem.apply(input, idx, basic)


def index_put(input: Tensor, index: Any, value: Any) -> Tensor:
    idx, _ = convert_index(index)
    if not isinstance(value, Tensor):
        value = Tensor._make(be(input._data).asarray(value, input._data.dtype))
    elif value.dtype != input.dtype:
        value = value.to(input.dtype)
    return IndexPut.apply(input, value, idx)


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    idx = check_index(index, "gather")
    d = dim_arg(dim, input.ndim, "gather")
    if idx.ndim != input.ndim and not (idx.ndim <= 1 and input.ndim <= 1):
        raise RuntimeError(f"gather: index has {idx.ndim} dims but input has {input.ndim} (shapes {tuple(idx.shape)} and {tuple(input.shape)})")
    for i, (a, b) in enumerate(zip(idx.shape, input.shape)):
        if i != d and a > b:
            raise RuntimeError(f"gather: index shape {tuple(idx.shape)} exceeds input shape {tuple(input.shape)} at dim {i}")
    check_bounds(idx, input.shape[d] if input.ndim else 1, "gather", d)
    if input.ndim == 0:
        return input.reshape(idx.shape).clone() if idx.size else input.reshape((0,) * idx.ndim)
    return Gather.apply(input, d, idx)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    idx = check_index(index, "index_select")
    if idx.ndim > 1:
        raise IndexError(f"index_select: index must be 0-d or 1-d, got shape {tuple(idx.shape)}")
    d = dim_arg(dim, input.ndim, "index_select")
    if input.ndim == 0:
        check_bounds(idx, 1, "index_select", 0)
        return input.reshape(idx.shape).clone()
    check_bounds(idx, input.shape[d], "index_select", d)
    return IndexSelect.apply(input, d, idx.reshape(-1) if idx.ndim == 0 else idx)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by the integer tensor `input`; the
    padding_idx row gets no gradient."""
    idx = check_index(input, "embedding")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {tuple(weight.shape)}")
    check_bounds(idx, weight.shape[0], "embedding", 0)
    if padding_idx is not None:
        if not -weight.shape[0] <= padding_idx < weight.shape[0]:
            raise IndexError(f"embedding: padding_idx {padding_idx} is out of range for {weight.shape[0]} embeddings")
        padding_idx %= weight.shape[0]
    return IndexSelect.apply(weight, 0, idx, padding_idx)
