"""matmul on every instruction set the CPU supports: pyzen.matmul / @ and pyzen._C.matmul
against NumPy float64, for every layout the backend can hand to the kernel."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
import pyzen._C as C
from conftest import assert_np_close, rng_for, to_np

ISAS = list(C.supported_isas())


def test_supported_isas_shape():
    assert ISAS, "supported_isas() is empty"
    assert ISAS[-1] == "scalar"
    assert C.isa() in ISAS
    assert all(isinstance(n, str) for n in ISAS)


def test_set_isa_rejects_unknown_and_keeps_current():
    before = C.isa()
    with pytest.raises(ValueError, match="bogus"):
        C.set_isa("bogus")
    assert C.isa() == before


def _tolerance(dtype, k):
    if dtype == pyzen.float64:
        return 1e-12, 1e-12 * max(k, 1)
    return 1e-5, 2e-6 * max(k, 1)


def _mk(rng, shape, dtype):
    a = rng.uniform(-1, 1, shape)
    return a.astype(np.float32 if dtype == pyzen.float32 else np.float64).astype(np.float64)


SHAPES = {
    "vec_vec": ((7,), (7,)),
    "vec_mat": ((5,), (5, 3)),
    "mat_vec": ((4, 6), (6,)),
    "1x1x1": ((1, 1), (1, 1)),
    "small": ((3, 4), (4, 5)),
    "odd_tails": ((13, 17), (17, 19)),
    "wide_k": ((9, 130), (130, 11)),
    "blocky": ((65, 33), (33, 67)),
    "batched": ((3, 5, 4), (3, 4, 6)),
    "bcast_batch": ((2, 1, 3, 4), (5, 4, 6)),
    "bcast_2d_rhs": ((4, 3, 5), (5, 2)),
    "bcast_2d_lhs": ((3, 5), (4, 5, 2)),
    "batched_vec": ((2, 3, 4), (4,)),
    "vec_batched": ((4,), (2, 4, 3)),
    "empty_m": ((0, 4), (4, 5)),
    "empty_k": ((3, 0), (0, 5)),
    "empty_n": ((3, 4), (4, 0)),
    "empty_batch": ((0, 2, 3), (3, 4)),
}


@pytest.mark.parametrize("dtype", [pyzen.float32, pyzen.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_matmul_shapes(isa, name, dtype):
    sa, sb = SHAPES[name]
    rng = rng_for("mm", name)
    a, b = _mk(rng, sa, dtype), _mk(rng, sb, dtype)
    x, y = pyzen.tensor(a, dtype=dtype), pyzen.tensor(b, dtype=dtype)
    want = np.matmul(a, b)
    rtol, atol = _tolerance(dtype, sa[-1])
    for got in (pyzen.matmul(x, y), x @ y, x.matmul(y)):
        assert got.dtype == dtype
        assert got.shape == want.shape
        assert_np_close(to_np(got), want, rtol, atol, what=name)


LAYOUTS = {
    # name: function building a view from a contiguous float64 array of the given base shape
    "transposed_a": ((6, 5), (6, 7), lambda a: a.T, lambda b: b),
    "transposed_b": ((5, 6), (7, 6), lambda a: a, lambda b: b.T),
    "both_transposed": ((6, 5), (7, 6), lambda a: a.T, lambda b: b.T),
    "sliced_rows_cols": ((10, 12), (12, 9), lambda a: a[::2, 1::2], lambda b: b[::2, :]),
    "flipped": ((5, 6), (6, 4), lambda a: a.flip(0), lambda b: b.flip(1)),
    "flipped_both_dims": ((5, 6), (6, 4), lambda a: a.flip((0, 1)), lambda b: b),
    "batched_mT": ((3, 4, 5), (3, 6, 4), lambda a: a.mT, lambda b: b.mT),
    "permuted_batch": ((4, 3, 5), (3, 5, 2), lambda a: a.permute(1, 0, 2), lambda b: b),
    "expanded_batch": ((1, 4, 5), (3, 5, 2), lambda a: a.expand(3, 4, 5), lambda b: b),
    "column_of_matrix": ((6, 5), (5, 4), lambda a: a[:, 1:3], lambda b: b[1:3, :]),
}


def _np_view(arr, fn):
    """Apply the same view to a NumPy array (translating the pyzen-only methods)."""

    class V:
        def __init__(self, a):
            self.a = a

        @property
        def T(self):
            return self.a.T

        @property
        def mT(self):
            return np.swapaxes(self.a, -1, -2)

        def flip(self, dims):
            return np.flip(self.a, dims)

        def permute(self, *dims):
            return np.transpose(self.a, dims)

        def expand(self, *shape):
            return np.broadcast_to(self.a, shape)

        def __getitem__(self, k):
            return self.a[k]

    out = fn(V(arr))
    return out.a if isinstance(out, V) else np.asarray(out)


@pytest.mark.parametrize("dtype", [pyzen.float32, pyzen.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_matmul_non_contiguous(isa, name, dtype):
    sa, sb, fa, fb = LAYOUTS[name]
    rng = rng_for("layout", name)
    a, b = _mk(rng, sa, dtype), _mk(rng, sb, dtype)
    x = fa(pyzen.tensor(a, dtype=dtype))
    y = fb(pyzen.tensor(b, dtype=dtype))
    want = np.matmul(_np_view(a, fa), _np_view(b, fb))
    got = x @ y
    rtol, atol = _tolerance(dtype, want.shape[-1] + 8)
    assert got.shape == want.shape and got.dtype == dtype
    assert_np_close(to_np(got), want, rtol, atol, what=name)


@pytest.mark.parametrize("name", ["small", "bcast_batch", "mat_vec", "vec_vec", "batched_vec"])
def test_matmul_gradcheck(isa, name):
    sa, sb = SHAPES[name]
    if name == "bcast_batch":
        sa, sb = (2, 1, 2, 3), (3, 3, 2)
    rng = rng_for("mmgrad", name)
    x = pyzen.tensor(rng.uniform(-1, 1, sa), dtype=pyzen.float64, requires_grad=True)
    y = pyzen.tensor(rng.uniform(-1, 1, sb), dtype=pyzen.float64, requires_grad=True)
    assert pyzen.autograd.gradcheck(pyzen.matmul, (x, y))


def test_matmul_backward_values(isa):
    rng = rng_for("mmback")
    a, b, g = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (3, 5)), rng.uniform(-1, 1, (4, 5))
    x = pyzen.tensor(a, dtype=pyzen.float32, requires_grad=True)
    y = pyzen.tensor(b, dtype=pyzen.float32, requires_grad=True)
    ((x @ y) * pyzen.tensor(g, dtype=pyzen.float32)).sum().backward()
    a32, b32, g32 = (v.astype(np.float32).astype(np.float64) for v in (a, b, g))
    assert_np_close(to_np(x.grad), g32 @ b32.T, 1e-5, 1e-5)
    assert_np_close(to_np(y.grad), a32.T @ g32, 1e-5, 1e-5)


def test_matmul_int64_goes_through_numpy(isa):
    a = np.arange(12, dtype=np.int64).reshape(3, 4) - 5
    b = np.arange(8, dtype=np.int64).reshape(4, 2) * 3
    got = pyzen.tensor(a) @ pyzen.tensor(b)
    assert got.dtype == pyzen.int64
    np.testing.assert_array_equal(to_np(got), a @ b)
    big = np.full((2, 2), 2**40, dtype=np.int64)
    np.testing.assert_array_equal(to_np(pyzen.tensor(big) @ pyzen.eye(2, dtype=pyzen.int64)), big)


# ------------------------------------------------------------------ the raw kernel
_C_CASES = {
    "contiguous": lambda a, b: (a, b),
    "transposed_inner": lambda a, b: (np.swapaxes(np.ascontiguousarray(np.swapaxes(a, 1, 2)), 1, 2),
                                      np.swapaxes(np.ascontiguousarray(np.swapaxes(b, 1, 2)), 1, 2)),
    "negative_strides": lambda a, b: (np.ascontiguousarray(a[::-1, ::-1, ::-1])[::-1, ::-1, ::-1],
                                      np.ascontiguousarray(b[:, ::-1, :])[:, ::-1, :]),
    "strided": lambda a, b: (np.repeat(a, 2, axis=2)[:, :, ::2], np.repeat(b, 3, axis=1)[:, ::3, :]),
    "broadcast_batch_stride0": lambda a, b: (a, np.broadcast_to(b[:1], b.shape)),
    "fortran": lambda a, b: (np.asfortranarray(a), np.asfortranarray(b)),
}


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", sorted(_C_CASES))
@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (3, 17, 33, 9), (1, 1, 1, 1), (2, 0, 3, 4), (2, 3, 0, 4)])
def test_C_matmul_any_strides(isa, layout, np_dtype, shape):
    bsz, m, k, n = shape
    rng = rng_for("C", layout, shape)
    a = rng.uniform(-1, 1, (bsz, m, k)).astype(np_dtype)
    b = rng.uniform(-1, 1, (bsz, k, n)).astype(np_dtype)
    va, vb = _C_CASES[layout](a, b)
    np.testing.assert_array_equal(va, a)
    want = np.matmul(va.astype(np.float64), vb.astype(np.float64))
    got = np.asarray(C.matmul(va, vb))
    assert got.shape == (bsz, m, n) and got.dtype == np_dtype
    rtol, atol = (1e-12, 1e-12 * max(k, 1)) if np_dtype == np.float64 else (1e-5, 2e-6 * max(k, 1))
    assert_np_close(got, want, rtol, atol, what=f"{isa} {layout}")


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(2, 1, 50, 100), (1, 37, 700, 45), (2, 3, 0, 4), (1, 13, 7, 33)],
                         ids=["rows_kernel", "k_blocks_and_edges", "empty_k", "small"])
def test_C_matmul_bias_is_added_to_every_row(isa, np_dtype, shape):
    bsz, m, k, n = shape
    rng = rng_for("C bias", shape)
    a = rng.uniform(-1, 1, (bsz, m, k)).astype(np_dtype)
    b = np.swapaxes(rng.uniform(-1, 1, (bsz, n, k)).astype(np_dtype), 1, 2)
    bias = rng.uniform(-1, 1, n).astype(np_dtype)
    got = C.matmul(a, b, bias)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64)) + bias
    rtol, atol = (1e-12, 1e-12 * max(k, 1)) if np_dtype == np.float64 else (1e-5, 2e-6 * max(k, 1))
    assert_np_close(got, want, rtol, atol, what=f"{isa} bias")
    with pytest.raises(TypeError, match="matmul: bias must have the operands' dtype"):
        C.matmul(a, b, bias.astype(np.float16))
    with pytest.raises(ValueError, match="matmul: bias must be C-contiguous"):
        C.matmul(a, b, np.repeat(bias, 2)[::2])


def test_C_matmul_validates():
    a = np.ones((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3, 4\) and \(2, 5, 6\) cannot be multiplied \(4 != 5\)"):
        C.matmul(a, np.ones((2, 5, 6), np.float32))
    with pytest.raises(TypeError, match="matmul"):
        C.matmul(a, np.ones((2, 4, 6), np.float64))
    with pytest.raises(ValueError, match="matmul"):
        C.matmul(np.ones((3, 4), np.float32), np.ones((4, 2), np.float32))


# ------------------------------------------------- blocking edges, layouts, determinism
def _edge_shapes(f64):
    """(batch, M, K, N) on and around every tile and block edge of the active ISA's kernel:
    MR x NR micro-tile tails, K-block (KC) multiples, row-block (MC) and column-panel (NC)
    sizes, as the kernel reports them (csrc/kernels/matmul.cpp, matmul_blocking)."""
    b0 = C._matmul_blocking(1, f64)
    mr, nr, kc_max = b0["mr"], b0["nr"], b0["kc_max"]
    shapes = [(1, m, 7, n) for m in (1, mr - 1, mr, mr + 1, 2 * mr + 1)
              for n in (1, nr - 1, nr, nr + 1, 2 * nr + 3)]
    for k in (kc_max - 1, kc_max, kc_max + 1, 2 * kc_max - 1, 2 * kc_max + 1):
        shapes += [(1, mr, k, nr), (1, mr + 1, k, nr - 1)]
    k = kc_max + 1  # two K-blocks of about kc_max / 2
    bl = C._matmul_blocking(k, f64)
    shapes += [(1, m, k, nr + 3) for m in (bl["mc"] - 1, bl["mc"], bl["mc"] + 1)]
    shapes += [(1, mr - 1, k, n) for n in (bl["nc"] - 1, bl["nc"], bl["nc"] + 1)]
    shapes += [(2, 2 * mr + 1, 9, 3 * nr - 1), (3, 1, 5, 1)]
    return shapes


def test_matmul_blocking_is_sane(isa):
    for f64 in (False, True):
        for k in (1, 100, 1000, 5000):
            b = C._matmul_blocking(k, f64)
            assert 1 <= b["kc"] <= b["kc_max"] and b["kc"] >= -(-k // -(-k // b["kc_max"]))
            assert b["mc"] % b["mr"] == 0 and b["nc"] % b["nr"] == 0


_LAYOUTS = ["nn", "nt", "tn", "tt", "neg", "zero", "gap"]


def _operands(rng, shape, layout, np_dtype):
    """a (batch, M, K) and b (batch, K, N) views with the requested memory layout."""
    bsz, m, k, n = shape
    a = rng.uniform(-1, 1, (bsz, m, k)).astype(np_dtype)
    b = rng.uniform(-1, 1, (bsz, k, n)).astype(np_dtype)
    t = lambda x: np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 1, 2)), 1, 2)  # same values
    if layout == "nt":  # A . B^T: b is a transposed view (unit row stride)
        b = t(b)
    elif layout == "tn":  # A^T . B: a is a transposed view (unit row stride)
        a = t(a)
    elif layout == "tt":
        a, b = t(a), t(b)
    elif layout == "neg":  # negative strides in every dimension
        a = np.ascontiguousarray(a[::-1, ::-1, ::-1])[::-1, ::-1, ::-1]
        b = t(np.ascontiguousarray(b[::-1, ::-1, ::-1]))[::-1, ::-1, ::-1]
    elif layout == "zero":  # stride 0: every row of A and every column of B the same
        a = np.broadcast_to(a[:, :1, :], a.shape)
        b = np.broadcast_to(b[:, :, :1], b.shape)
    elif layout == "gap":  # non-unit strides in both matrix dimensions
        a = np.repeat(np.repeat(a, 2, axis=1), 3, axis=2)[:, ::2, ::3]
        b = np.repeat(np.repeat(b, 3, axis=1), 2, axis=2)[:, ::3, ::2]
    return a, b


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", _LAYOUTS)
def test_C_matmul_block_edges(isa, layout, np_dtype):
    for shape in _edge_shapes(np_dtype == np.float64):
        rng = rng_for("edges", shape, layout)
        a, b = _operands(rng, shape, layout, np_dtype)
        want = np.matmul(a.astype(np.float64), b.astype(np.float64))
        got = np.asarray(C.matmul(a, b))
        k = shape[2]
        rtol, atol = (1e-12, 1e-12 * k) if np_dtype == np.float64 else (1e-5, 2e-6 * k)
        assert got.shape == want.shape and got.dtype == np_dtype
        assert_np_close(got, want, rtol, atol, what=f"{isa} {layout} {shape}")


# Shapes big enough to run on two threads, covering the team path (one batch item split
# over the threads: row blocks, and column splits when M is small) and the per-item path.
_THREAD_SHAPES = [(1, 768, 128, 384), (1, 128, 768, 512), (1, 13, 700, 1000), (1, 6, 1000, 700),
                  (1, 1001, 385, 97), (3, 200, 200, 200), (48, 64, 32, 64), (5, 130, 70, 90)]


@pytest.mark.parametrize("layout", ["nn", "nt", "tn", "neg"])
@pytest.mark.parametrize("shape", _THREAD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_C_matmul_same_bits_for_any_thread_count(isa, shape, layout):
    rng = rng_for("threads", shape, layout)
    before = C.get_num_threads()
    try:
        for np_dtype in (np.float32, np.float64):
            a, b = _operands(rng, shape, layout, np_dtype)
            results = []
            for nt in (1, 2, 3):
                C.set_num_threads(nt)
                results.append(np.asarray(C.matmul(a, b)))
            want = np.matmul(a.astype(np.float64), b.astype(np.float64))
            k = shape[2]
            rtol, atol = (1e-12, 1e-12 * k) if np_dtype == np.float64 else (1e-5, 2e-6 * k)
            assert_np_close(results[0], want, rtol, atol, what=f"{isa} {layout} {shape}")
            for r in results[1:]:
                np.testing.assert_array_equal(r, results[0])
    finally:
        C.set_num_threads(before)
