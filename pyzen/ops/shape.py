"""Shape ops: views (reshape, permute, expand, ...) and copies (cat, flip, repeat, tril)."""
from __future__ import annotations

import math
from typing import Any, Sequence

from .._tensor import Size, Tensor
from ..autograd.function import Function
from ._util import be, dim_arg, promote


class Reshape(Function):
    _raw = True
    _view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return be(x).reshape(x, shape)

    @staticmethod
    def backward(ctx, g):
        return be(g).reshape(g, ctx.shape)


class Permute(Function):
    _raw = True
    _view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return be(x).transpose(x, dims)

    @staticmethod
    def backward(ctx, g):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return be(g).transpose(g, inverse)


class Expand(Function):
    _raw = True
    _view = True

    @staticmethod
    def forward(ctx, x, shape):
        return be(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g  # the engine sums it back to the input's shape


class Flip(Function):
    _raw = True
    _view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return be(x).flip(x, dims)

    @staticmethod
    def backward(ctx, g):
        return be(g).flip(g, ctx.dims)


class Cat(Function):
    _raw = True

    @staticmethod
    def forward(ctx, *xs, dim=0):
        _, xs = promote("cat", *xs)
        ctx.sizes = [x.shape[dim] for x in xs]
        ctx.dim = dim
        return be(xs[0]).concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        out, start = [], 0
        index = [slice(None)] * g.ndim
        for n in ctx.sizes:
            index[ctx.dim] = slice(start, start + n)
            out.append(g[tuple(index)])
            start += n
        return tuple(out)


class Repeat(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, repeats):
        ctx.shape = (1,) * (len(repeats) - x.ndim) + x.shape
        ctx.repeats = repeats
        return be(x).tile(x, repeats)

    @staticmethod
    def backward(ctx, g):
        # Split every axis into (repeat, size) and sum over the repeats.
        split = []
        for r, s in zip(ctx.repeats, ctx.shape):
            split += [r, s]
        bx = be(g)
        g = bx.sum(bx.reshape(g, split), axis=tuple(range(0, len(split), 2)))
        return g


class Triangle(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, diagonal, upper):
        if x.ndim < 2:
            raise RuntimeError(f"{'triu' if upper else 'tril'}: expected a tensor with 2 or more dims, got shape {tuple(x.shape)}")
        ctx.diagonal, ctx.upper = diagonal, upper
        return (be(x).triu if upper else be(x).tril)(x, diagonal)

    @staticmethod
    def backward(ctx, g):
        return (be(g).triu if ctx.upper else be(g).tril)(g, ctx.diagonal)


class Clone(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x):
        return be(x).copy(x)

    @staticmethod
    def backward(ctx, g):
        return g


class Cast(Function):
    _raw = True

    @staticmethod
    def forward(ctx, x, dtype):
        return be(x).astype(x, dtype.np)

    @staticmethod
    def backward(ctx, g):
        return g  # the engine casts it back to the input's dtype


# ---- public functions ----
def _shape_arg(shape: tuple, op: str) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        shape = tuple(shape[0])
    out = tuple(int(s) for s in shape)
    if any(s < -1 for s in out) or out.count(-1) > 1:
        raise RuntimeError(f"{op}: invalid shape {out}")
    return out


def _infer(shape: tuple[int, ...], numel: int, op: str, source: tuple) -> tuple[int, ...]:
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape {list(shape)} is invalid for input of size {numel} (shape {source})")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"{op}: shape {list(shape)} is invalid for input of size {numel} (shape {source})")
    return shape


def reshape(input: Tensor, *shape: Any) -> Tensor:
    shape = _infer(_shape_arg(shape, "reshape"), input.numel(), "reshape", tuple(input.shape))
    if shape == input._data.shape:
        return input if input.grad_fn is None and not input._requires_grad else Reshape.apply(input, shape)
    return Reshape.apply(input, shape)


def view(input: Tensor, *shape: Any) -> Tensor:
    shape = _infer(_shape_arg(shape, "view"), input.numel(), "view", tuple(input.shape))
    out = Reshape.apply(input, shape)
    if out._data.size and out._base is None and input._data.size:
        raise RuntimeError(
            f"view: shape {list(shape)} is not compatible with the input's memory layout "
            f"(shape {tuple(input.shape)}, not contiguous); use .reshape(...) instead"
        )
    return out


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    nd = input.ndim
    if nd == 0:
        return reshape(input, (1,))
    s, e = dim_arg(start_dim, nd, "flatten"), dim_arg(end_dim, nd, "flatten")
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape
    return reshape(input, tuple(shape[:s]) + (math.prod(shape[s : e + 1]),) + tuple(shape[e + 1 :]))


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    d = dim_arg(dim, input.ndim, "unflatten")
    shape = tuple(input.shape)
    inner = _infer(tuple(sizes), shape[d], "unflatten", shape)
    return reshape(input, shape[:d] + inner + shape[d + 1 :])


def permute(input: Tensor, *dims: Any) -> Tensor:
    dims = _shape_arg(dims, "permute") if dims and not isinstance(dims[0], int) else dims
    nd = input.ndim
    norm = tuple(dim_arg(d, nd, "permute") for d in dims)
    if len(norm) != nd or sorted(norm) != list(range(nd)):
        raise RuntimeError(f"permute: dims {tuple(dims)} are not a permutation of the {nd} dims of shape {tuple(input.shape)}")
    return Permute.apply(input, norm)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    nd = input.ndim
    if nd == 0:
        dim_arg(dim0, 0, "transpose"), dim_arg(dim1, 0, "transpose")
        return input
    d0, d1 = dim_arg(dim0, nd, "transpose"), dim_arg(dim1, nd, "transpose")
    order = list(range(nd))
    order[d0], order[d1] = d1, d0
    return Permute.apply(input, tuple(order))


swapaxes = transpose


def t(input: Tensor) -> Tensor:
    if input.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dims, got shape {tuple(input.shape)}")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    shape = tuple(input.shape)
    if dim is None:
        drop = {i for i, s in enumerate(shape) if s == 1}
    else:
        ds = dim if isinstance(dim, (tuple, list)) else (dim,)
        drop = {d for d in (dim_arg(d, len(shape), "squeeze") for d in ds) if shape and shape[d] == 1}
    return reshape(input, tuple(s for i, s in enumerate(shape) if i not in drop))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    shape = list(input.shape)
    d = dim_arg(dim, len(shape) + 1, "unsqueeze")
    shape.insert(d, 1)
    return Reshape.apply(input, tuple(shape))


def expand(input: Tensor, *sizes: Any) -> Tensor:
    sizes = _shape_arg(sizes, "expand")
    shape = tuple(input.shape)
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand: the number of sizes {len(sizes)} is less than the number of dims {len(shape)}")
    lead = len(sizes) - len(shape)
    out = []
    for i, s in enumerate(sizes):
        old = shape[i - lead] if i >= lead else None
        if s == -1:
            if old is None:
                raise RuntimeError(f"expand: -1 is not allowed in a new leading dim (sizes {sizes})")
            s = old
        elif old is not None and old != 1 and old != s:
            raise RuntimeError(f"expand: size {old} of dim {i - lead} cannot be expanded to {s} (shape {shape} to {sizes})")
        out.append(s)
    return Expand.apply(input, tuple(out))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, tuple(other.shape))


def broadcast_to(input: Tensor, shape: Sequence[int]) -> Tensor:
    return expand(input, tuple(shape))


def repeat(input: Tensor, *repeats: Any) -> Tensor:
    repeats = _shape_arg(repeats, "repeat")
    if len(repeats) < input.ndim or any(r < 0 for r in repeats):
        raise RuntimeError(f"repeat: need one non-negative count per dim ({input.ndim} dims), got {repeats}")
    return Repeat.apply(input, repeats)


def _tensors(tensors: Any, op: str) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{op}: expected a non-empty sequence of tensors")
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: expected a sequence of Tensors, element {i} is {type(x).__name__}")
    return tensors


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = [x for x in _tensors(tensors, "cat") if not (x.ndim == 1 and x.numel() == 0)] or list(tensors)[:1]
    ref = tensors[0]
    d = dim_arg(dim, ref.ndim, "cat")
    for i, x in enumerate(tensors):
        if x.ndim != ref.ndim or any(a != b for j, (a, b) in enumerate(zip(x.shape, ref.shape)) if j != d):
            raise RuntimeError(
                f"cat: tensor {i} has shape {tuple(x.shape)}, which does not match {tuple(ref.shape)} outside dim {d}"
            )
    return Cat.apply(*tensors, dim=d)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = _tensors(tensors, "stack")
    shape = tensors[0].shape
    for i, x in enumerate(tensors):
        if x.shape != shape:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got {tuple(shape)} at entry 0 and {tuple(x.shape)} at entry {i}")
    d = dim_arg(dim, len(shape) + 1, "stack")
    return Cat.apply(*[unsqueeze(x, d) for x in tensors], dim=d)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = dim_arg(dim, input.ndim, "narrow")
    size = input.shape[d]
    if start < 0:
        start += size
    if not (0 <= start and length >= 0 and start + length <= size):
        raise IndexError(f"narrow: start {start} + length {length} exceeds dim {d} of size {size}")
    index = (slice(None),) * d + (slice(start, start + length),)
    return input[index]


def split(tensor: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    d = dim_arg(dim, tensor.ndim, "split")
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sections = [min(step, size - s) for s in range(0, size, step)] if size else [0]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != size or any(s < 0 for s in sections):
            raise RuntimeError(f"split: sections {sections} do not sum to the size {size} of dim {d}")
    out, start = [], 0
    for n in sections:
        out.append(narrow(tensor, d, start, n))
        start += n
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    size = input.shape[dim_arg(dim, input.ndim, "chunk")]
    return split(input, max(-(-size // chunks), 1), dim)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    d = dim_arg(dim, input.ndim, "unbind")
    return tuple(input[(slice(None),) * d + (i,)] for i in range(input.shape[d]))


def flip(input: Tensor, dims: int | Sequence[int]) -> Tensor:
    ds = (dims,) if isinstance(dims, int) else tuple(dims)
    norm = tuple(dim_arg(d, input.ndim, "flip") for d in ds)
    if len(set(norm)) != len(norm):
        raise RuntimeError(f"flip: dims {ds} has duplicates")
    if input.ndim == 0:
        return input.clone()
    return Flip.apply(input, norm)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    return Triangle.apply(input, diagonal, False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    return Triangle.apply(input, diagonal, True)


def clone(input: Tensor) -> Tensor:
    return Clone.apply(input)


def contiguous(input: Tensor) -> Tensor:
    return input if input.is_contiguous() else Clone.apply(input)
