"""Edge cases for the sanitizer run (tools/sanitize.sh): every tail length of the vector
loops, zero sizes, negative and zero strides and non-finite values through each pyzen._C
kernel, on every ISA and on 1 and 3 threads (3: uneven splits of rows and items).

Every input is a fresh allocation of exactly its size, so a read or write past either end
lands in an AddressSanitizer redzone. The checks that matter are the sanitizers'; values are
tested against NumPy in tests/. Run without sanitizers this only shows that nothing crashes.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import pyzen._C as C

DTYPES = (np.float32, np.float64)
TAILS = list(range(0, 41)) + [255, 1025]  # every remainder of 4-, 8- and 16-lane loops
FILLS = (None, np.nan, np.inf, -np.inf, 1e30)  # None: standard normal


@pytest.fixture(params=list(itertools.product(C.supported_isas(), (1, 3))), ids=str)
def kernel_setting(request):
    isa, threads = request.param
    before = C.isa(), C.get_num_threads()
    C.set_isa(isa)
    C.set_num_threads(threads)
    yield
    C.set_isa(before[0])
    C.set_num_threads(before[1])


def arr(shape, dtype, fill=None, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if fill is not None:
        a[...] = fill
    return np.ascontiguousarray(a)


def test_matmul(kernel_setting):
    shapes = [(1, 1, 1, 1), (2, 1, 7, 65), (1, 2, 3, 70), (3, 5, 1, 9), (1, 7, 33, 17),
              (2, 13, 100, 31), (1, 6, 17, 16), (1, 12, 5, 32), (0, 3, 4, 5), (2, 0, 4, 5),
              (2, 3, 0, 5), (2, 3, 4, 0), (1, 1, 0, 70)]
    for dt, (b, m, k, n) in itertools.product(DTYPES, shapes):
        a, bm = arr((b, m, k), dt), arr((b, k, n), dt)
        layouts = [(a, bm),
                   (arr((b, k, m), dt).transpose(0, 2, 1), arr((b, n, k), dt).transpose(0, 2, 1)),
                   (a[:, ::-1, ::-1], bm[:, ::-1, ::-1]),
                   (np.broadcast_to(arr((1, m, k), dt), (b, m, k)), bm)]
        for x, y in layouts:
            assert C.matmul(x, y).shape == (b, m, n)


def test_gelu(kernel_setting):
    for dt, n, fill, approximate in itertools.product(DTYPES, TAILS, FILLS, ("none", "tanh")):
        x, g = arr((n,), dt, fill), arr((n,), dt, seed=1)
        assert C.gelu_forward(x, approximate).shape == (n,)
        assert C.gelu_backward(g, x, approximate).shape == (n,)


def test_layer_norm(kernel_setting):
    for dt, rows, cols in itertools.product(DTYPES, (0, 1, 3), TAILS):
        x, g = arr((rows, cols), dt), arr((rows, cols), dt, seed=1)
        w, b = arr((cols,), dt, seed=2), arr((cols,), dt, seed=3)
        for weight, bias in [(w, b), (w, None), (None, b), (None, None)]:
            out, mean, rstd = C.layer_norm_forward(x, weight, bias, 1e-5)
            for need_bias in (True, False):
                assert C.layer_norm_backward(g, x, weight, mean, rstd, need_bias)[0].shape == x.shape
        # Mean far from zero takes the backward's recompute-the-mean pass (reads x[0]).
        far = np.ascontiguousarray(1e4 + 1e-3 * x)
        out, mean, rstd = C.layer_norm_forward(far, w, b, 1e-12)
        C.layer_norm_backward(g, far, w, mean, rstd, True)
        # A caller's own finite statistics for empty rows: there is no x[0] to read.
        C.layer_norm_backward(g, x, w, np.full(rows, 1e4, dt), np.ones(rows, dt), True)


def test_cross_entropy(kernel_setting):
    for dt, rows, cols, fill in itertools.product(DTYPES, (0, 1, 5), TAILS[1:], FILLS):
        logits = arr((rows, cols), dt, fill) * (30 if fill is None else 1)
        target = np.random.default_rng(cols).integers(0, cols, rows).astype(np.int64)
        target[::2] = -100  # ignore_index rows
        for smoothing in (0.0, 0.1):
            losses, lse = C.cross_entropy_forward(logits, target, -100, smoothing)
            grad = C.cross_entropy_backward(arr((rows,), dt), logits, target, lse, -100, smoothing)
            assert grad.shape == logits.shape


def test_attention(kernel_setting):
    shapes = [(1, 1, 1, 1, 1), (2, 3, 5, 7, 9), (1, 33, 17, 3, 5), (3, 65, 70, 16, 8),
              (1, 9, 130, 33, 1), (2, 1, 40, 64, 64), (1, 40, 1, 5, 5), (0, 3, 4, 5, 6),
              (2, 0, 4, 5, 6), (2, 3, 0, 5, 6), (2, 3, 4, 0, 6), (2, 3, 4, 5, 0)]
    rng = np.random.default_rng(0)
    for dt, (n, tq, tk, d, dv) in itertools.product(DTYPES, shapes):
        q, k, v = arr((n, tq, d), dt), arr((n, tk, d), dt, seed=1), arr((n, tk, dv), dt, seed=2)
        masks = [None, rng.random((n, tq, tk)) > 0.3, arr((n, tq, tk), dt, seed=3),
                 np.broadcast_to(rng.random((1, tq, tk)) > 0.3, (n, tq, tk))]
        for mask, causal in itertools.product(masks, (False, True)):
            out, lse = C.attention_forward(q, k, v, mask, causal, 0.5)
            grads = C.attention_backward(arr(out.shape, dt, seed=4), q, k, v, out, lse, mask, causal, 0.5)
            assert [g.shape for g in grads] == [q.shape, k.shape, v.shape]


def test_adamw(kernel_setting):
    for dt, sizes in itertools.product(DTYPES, [(), (0,), (1,), (7, 33), (1000, 17, 3)]):
        for amsgrad, weight_decay, maximize in itertools.product((False, True), (0.0, 0.01), (False, True)):
            params = [arr((s,), dt) for s in sizes]

            def like(seed):
                return [np.abs(arr(p.shape, dt, seed=seed)) for p in params]

            C.adamw_step(params, like(1), like(2), like(3), like(4) if amsgrad else None,
                         [3.0] * len(params), lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                         weight_decay=weight_decay, decoupled=True, maximize=maximize)


def misaligned(shape, dtype=np.float64):
    """C-contiguous, but one byte off its item alignment, ending where its allocation ends."""
    a = np.zeros(int(np.prod(shape)) * np.dtype(dtype).itemsize + 1, np.uint8)[1:]
    a = a.view(dtype).reshape(shape)
    a[...] = 0.5
    return a


@pytest.mark.parametrize("op", ["gelu_forward", "gelu_backward", "layer_norm_forward",
                                "layer_norm_backward", "cross_entropy_forward",
                                "cross_entropy_backward", "adamw_step", "attention_forward",
                                "matmul"])
def test_misaligned_inputs(op):
    """A binding must refuse (ValueError naming the op) or copy a misaligned array: handed to
    a kernel, every T* access into it is undefined behaviour (UBSan: misaligned load)."""
    x, w, row = misaligned((3, 5)), misaligned((5,)), misaligned((3,))
    target = np.zeros(3, np.int64)
    calls = {
        "gelu_forward": lambda: C.gelu_forward(misaligned((9,))),
        "gelu_backward": lambda: C.gelu_backward(misaligned((9,)), misaligned((9,))),
        "layer_norm_forward": lambda: C.layer_norm_forward(x, w, w, 1e-5),
        "layer_norm_backward": lambda: C.layer_norm_backward(x, x, w, row, row, True),
        "cross_entropy_forward": lambda: C.cross_entropy_forward(x, target, -100, 0.0),
        "cross_entropy_backward": lambda: C.cross_entropy_backward(row, x, target, row, -100, 0.0),
        "adamw_step": lambda: C.adamw_step(*[[misaligned((7,))] for _ in range(4)], None, [1.0],
                                           lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                                           weight_decay=0.0, decoupled=True, maximize=False),
        "attention_forward": lambda: C.attention_forward(*[misaligned((1, 3, 4))] * 3),
        "matmul": lambda: C.matmul(misaligned((1, 3, 4)), misaligned((1, 4, 2))),
    }
    try:
        calls[op]()
    except ValueError as e:
        assert op in str(e)
