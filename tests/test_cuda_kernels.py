"""The CUDA kernels one by one against NumPy float64: matmul over shapes and layouts that
stress the SGEMM tile edges, reductions (nan, ties, determinism), fused softmax,
indexing and scatter-add, random numbers, transfers, the caching allocator, and a small
training run on the device.

Like test_cuda_ops.py, each test runs on the real GPU ("gpu", skipped without one) and on
the NumPy emulator of pyzen._cuda ("emulated", which checks these tests and the Python
layer everywhere). Tests of kernel-only behaviour (bitwise determinism, the allocator,
out-of-range indices) are GPU-only.
"""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
from conftest import assert_np_close, text_batch, to_np


gpu_only = pytest.mark.skipif(not pyzen.cuda.is_available(), reason=pyzen.cuda.unavailable_reason() or "")


def cuda(a, dtype=None):
    a = np.asarray(a)
    return pyzen.tensor(a, dtype=dtype, device="cuda")


def be():
    from pyzen.backend import cuda as cuda_backend

    return cuda_backend


# ---- transfers ----
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_round_trip_every_dtype_and_host_layout(device, dtype, rng):
    base = (rng.standard_normal((5, 6)) * 10).astype(dtype)
    for host in (base, base[::2, 1::3], base.T, np.asarray(base[1, 2]), base[:0]):
        t = pyzen.tensor(host, device="cuda")
        assert t.device.type == "cuda" and t.shape == host.shape
        back = t.cpu()
        assert back.device.type == "cpu"
        np.testing.assert_array_equal(back.numpy(), host)
        np.testing.assert_array_equal(t.numpy(), host)


def test_gradient_flows_back_through_to(device, rng):
    a = rng.standard_normal((3, 4))
    x = pyzen.tensor(a, dtype=pyzen.float64, requires_grad=True)
    y = (x.to("cuda") * 3.0).sum()
    y.backward()
    assert x.grad.device.type == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 3.0))


def test_views_share_device_memory(device):
    x = cuda(np.arange(12.0).reshape(3, 4))
    v = x[1:, ::2]
    assert not v.is_contiguous()
    x.add_(1.0)  # an in-place update of the base shows through the view
    np.testing.assert_array_equal(v.numpy(), np.arange(1.0, 13.0).reshape(3, 4)[1:, ::2])
    np.testing.assert_array_equal(x.T.contiguous().numpy(), x.numpy().T)
    np.testing.assert_array_equal(x.flip(1).numpy(), x.numpy()[:, ::-1])


# ---- matmul ----
SHAPES = [(1, 1, 1), (1, 5, 3), (7, 1, 9), (3, 4, 1), (127, 129, 130), (128, 128, 8), (129, 257, 31), (64, 300, 4),
          (200, 136, 520)]


@pytest.mark.parametrize("mnk", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
@pytest.mark.parametrize("ta", [False, True], ids=["a", "aT"])
@pytest.mark.parametrize("tb", [False, True], ids=["b", "bT"])
def test_sgemm_shapes_and_layouts(device, rng, mnk, ta, tb):
    m, n, k = mnk
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    A, B = cuda(a), cuda(b)
    A, B = (A.T if ta else A), (B.T if tb else B)
    a64, b64 = (a.T if ta else a).astype(np.float64), (b.T if tb else b).astype(np.float64)
    out = A @ B
    assert out.dtype == pyzen.float32 and out.shape == (m, n)
    assert_np_close(to_np(out), a64 @ b64, 1e-4, 1e-4 * np.sqrt(k), what=f"sgemm {mnk} ta={ta} tb={tb}")


def test_sgemm_unaligned_and_strided_operands(device, rng):
    a = rng.standard_normal((70, 131)).astype(np.float32)
    b = rng.standard_normal((133, 66)).astype(np.float32)
    A, B = cuda(a)[:, 1:130], cuda(b)[2:131, ::2]  # base off 16-byte alignment, odd strides
    out = A @ B
    assert_np_close(to_np(out), a[:, 1:130].astype(np.float64) @ b[2:131, ::2], 1e-4, 1e-3, what="unaligned")


def test_matmul_batched_with_broadcast_and_other_dtypes(device, rng):
    a = rng.standard_normal((2, 1, 33, 17))
    b = rng.standard_normal((1, 3, 17, 65))
    for dtype, rtol in ((pyzen.float32, 1e-4), (pyzen.float64, 1e-12)):
        out = cuda(a, dtype) @ cuda(b, dtype)
        assert out.shape == (2, 3, 33, 65)
        assert_np_close(to_np(out), a @ b, rtol, rtol, what=f"batched {dtype}")
    ai, bi = rng.integers(-5, 5, (4, 9, 7)), rng.integers(-5, 5, (4, 7, 3))
    np.testing.assert_array_equal(to_np(cuda(ai) @ cuda(bi)), ai @ bi)


def test_matmul_empty_inner_dim_gives_zeros(device):
    out = pyzen.zeros(3, 0, device="cuda") @ pyzen.zeros(0, 4, device="cuda")
    np.testing.assert_array_equal(to_np(out), np.zeros((3, 4)))
    assert (pyzen.zeros(0, 5, device="cuda") @ pyzen.zeros(5, 2, device="cuda")).shape == (0, 2)


@gpu_only
def test_sgemm_large_square(rng):
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    assert_np_close(to_np(cuda(a) @ cuda(b)), a.astype(np.float64) @ b, 1e-3, 1e-3, what="1024^3")


# ---- reductions ----
def test_reductions_over_axes_and_layouts(device, rng):
    a = rng.standard_normal((6, 5, 7))
    x = cuda(a)
    for view, ref in ((x, a), (x.transpose(0, 2), a.transpose(2, 1, 0)), (x[:, ::2], a[:, ::2])):
        for dim in (None, 0, 1, 2, (0, 2), -1):
            assert_np_close(to_np(view.sum(dim) if dim is not None else view.sum()), ref.sum(axis=dim), 1e-10, 1e-12)
        assert_np_close(to_np(view.amax(1)), ref.max(axis=1), 0, 0)
        np.testing.assert_array_equal(to_np(view.argmax(2)), ref.argmax(axis=2))
        np.testing.assert_array_equal(to_np(view.argmin(0)), ref.argmin(axis=0))
        assert_np_close(to_np(view.var(1)), ref.var(axis=1, ddof=1), 1e-10, 1e-12)


def test_argmax_ties_and_nan_follow_numpy(device):
    a = np.array([[1.0, 3.0, 3.0, 0.0], [np.nan, 1.0, np.nan, 5.0], [-np.inf, -np.inf, -np.inf, -np.inf]])
    x = cuda(a)
    np.testing.assert_array_equal(to_np(x.argmax(1)), a.argmax(axis=1))
    np.testing.assert_array_equal(to_np(x.argmin(1)), a.argmin(axis=1))
    got = to_np(x.amax(1))
    assert got[0] == 3.0 and np.isnan(got[1]) and got[2] == -np.inf


def test_large_reduction(device, rng):
    a = rng.standard_normal(1 << 20)
    assert_np_close(to_np(cuda(a).sum()), a.sum(), 1e-9, 1e-9)
    b = rng.standard_normal((1000, 1000)).astype(np.float32)
    assert_np_close(to_np(cuda(b).sum(1)), b.astype(np.float64).sum(1), 1e-4, 1e-4)


@gpu_only
def test_reductions_are_bitwise_deterministic(rng):
    x = cuda(rng.standard_normal((512, 4099)).astype(np.float32))
    first = [to_np(x.sum()), to_np(x.sum(1)), to_np(x.softmax(-1))]
    for _ in range(3):
        again = [to_np(x.sum()), to_np(x.sum(1)), to_np(x.softmax(-1))]
        for f, a in zip(first, again):
            np.testing.assert_array_equal(f, a)


def test_cumulative(device, rng):
    a = rng.standard_normal((4, 6))
    for dim in (0, 1):
        assert_np_close(to_np(cuda(a).cumsum(dim)), np.cumsum(a, axis=dim), 1e-12, 1e-12)
    assert_np_close(to_np(cuda(a).prod(1)), np.prod(a, axis=1), 1e-12, 1e-14)


# ---- fused softmax ----
@pytest.mark.parametrize("shape,axis", [((3, 7), -1), ((2, 5, 1000), -1), ((4, 6), 0), ((1, 1), -1)])
def test_fused_softmax_forward_and_backward(device, rng, shape, axis):
    a = rng.standard_normal(shape) * 3
    if shape[axis] > 1:
        a[(0,) * len(shape)] = -np.inf  # a masked entry: exact 0 in softmax
    g = rng.standard_normal(shape)
    m = a.max(axis=axis, keepdims=True)
    e = np.exp(a - m)
    ref = e / e.sum(axis=axis, keepdims=True)
    log_ref = a - m - np.log(e.sum(axis=axis, keepdims=True))
    x = cuda(a)._data
    bk = be()
    assert_np_close(bk.to_numpy(bk.softmax(x, axis)), ref, 1e-12, 1e-14, what="softmax")
    assert_np_close(bk.to_numpy(bk.log_softmax(x, axis)), log_ref, 1e-12, 1e-14, what="log_softmax")
    y, ly, gd = bk.softmax(x, axis), bk.log_softmax(x, axis), cuda(g)._data
    from pyzen.backend import cuda_array

    dx = cuda_array.softmax_backward_last(gd, y, axis, False)
    assert_np_close(bk.to_numpy(dx), ref * (g - (g * ref).sum(axis=axis, keepdims=True)), 1e-12, 1e-14)
    dlx = cuda_array.softmax_backward_last(gd, ly, axis, True)
    assert_np_close(bk.to_numpy(dlx), g - ref * g.sum(axis=axis, keepdims=True), 1e-12, 1e-14)
    f32 = bk.softmax(cuda(a, pyzen.float32)._data, axis)
    assert_np_close(bk.to_numpy(f32), ref, 1e-5, 1e-6, what="softmax float32")


# ---- indexing ----
def test_index_select_gather_and_scatter_add(device, rng):
    a = rng.standard_normal((5, 4))
    idx = np.array([4, 0, 0, 2, 4, 4])
    x = cuda(a, pyzen.float64).requires_grad_()
    out = pyzen.index_select(x, 0, cuda(idx))
    assert_np_close(to_np(out), a[idx], 0, 0)
    w = rng.standard_normal(out.shape)
    (out * cuda(w)).sum().backward()
    expected = np.zeros_like(a)
    np.add.at(expected, idx, w)
    assert_np_close(to_np(x.grad), expected, 1e-12, 1e-14, what="index_select backward (repeated rows)")
    gidx = rng.integers(0, 4, (5, 7))
    x.grad = None
    g = pyzen.gather(x, 1, cuda(gidx))
    assert_np_close(to_np(g), np.take_along_axis(a, gidx, 1), 0, 0)
    w2 = rng.standard_normal(g.shape)
    (g * cuda(w2)).sum().backward()
    expected = np.zeros_like(a)
    np.add.at(expected, (np.arange(5)[:, None], gidx), w2)
    assert_np_close(to_np(x.grad), expected, 1e-12, 1e-14, what="gather backward")


def test_embedding_rows_and_padding(device, rng):
    w = rng.standard_normal((10, 3))
    ids = np.array([[1, 0, 9], [1, 1, 3]])
    weight = cuda(w, pyzen.float64).requires_grad_()
    out = pyzen.embedding(cuda(ids), weight, padding_idx=0)
    assert_np_close(to_np(out), w[ids], 0, 0)
    out.sum().backward()
    counts = np.bincount(ids.ravel(), minlength=10).astype(np.float64)
    counts[0] = 0
    assert_np_close(to_np(weight.grad), np.repeat(counts[:, None], 3, 1), 0, 0)


def test_setitem_and_masks(device, rng):
    a = rng.standard_normal((4, 6))
    x = cuda(a)
    x[1:, ::2] = 7.0
    x[0] = cuda(np.arange(6.0))
    ref = a.copy()
    ref[1:, ::2] = 7.0
    ref[0] = np.arange(6.0)
    np.testing.assert_array_equal(x.numpy(), ref)
    mask = np.array([True, False, True, True])
    np.testing.assert_array_equal(x[cuda(mask)].numpy(), ref[mask])
    np.testing.assert_array_equal(x[:, [5, 0, 5]].numpy(), ref[:, [5, 0, 5]])


@gpu_only
def test_out_of_range_index_never_touches_memory_outside():
    from pyzen.backend import cuda_array

    x = cuda(np.arange(4.0))._data
    bad = cuda_array.from_numpy(np.array([0, 100, -100, 3]))
    np.testing.assert_array_equal(cuda_array.to_numpy(cuda_array.take(x, bad, 0)), [0.0, 0.0, 0.0, 3.0])
    pyzen.cuda.synchronize()  # no sticky launch error


@gpu_only
def test_kernels_refuse_to_write_a_broadcast_output():
    from pyzen import _cuda

    x = _cuda.from_numpy(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="broadcast"):
        _cuda.copy(x.view([2, 3], [0, 1], 0), x.view([2, 3], [0, 1], 0))  # one element from several threads
    for empty in ((3, 0), (0, 3)):  # size-0 shapes have stride-0 dims but write nothing
        assert pyzen.zeros(*empty, device="cuda").shape == empty


# ---- random ----
def test_random_is_reproducible_from_manual_seed(device):
    pyzen.manual_seed(7)
    a, b = pyzen.rand(1000, device="cuda").numpy(), pyzen.randn(1000, device="cuda", dtype=pyzen.float64).numpy()
    pyzen.manual_seed(7)
    np.testing.assert_array_equal(pyzen.rand(1000, device="cuda").numpy(), a)
    np.testing.assert_array_equal(pyzen.randn(1000, device="cuda", dtype=pyzen.float64).numpy(), b)
    assert not np.array_equal(pyzen.rand(1000, device="cuda").numpy(), a)


@pytest.mark.parametrize("dtype", [pyzen.float32, pyzen.float64])
def test_random_distributions(device, dtype):
    n = 1 << 20
    u = pyzen.rand(n, device="cuda", dtype=dtype).numpy().astype(np.float64)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    z = pyzen.randn(n + 3, device="cuda", dtype=dtype).numpy().astype(np.float64)  # odd size: tail elements
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 5 / np.sqrt(n) and abs(z.std() - 1) < 5 / np.sqrt(2 * n)
    r = pyzen.randint(-3, 4, (n,), device="cuda").numpy()
    assert r.min() == -3 and r.max() == 3
    assert np.abs(np.bincount(r + 3) / n - 1 / 7).max() < 5 * np.sqrt(1 / 7 / n)


# ---- the caching allocator ----
@gpu_only
def test_allocator_reuses_freed_blocks_and_empties_its_cache():
    pyzen.cuda.synchronize()
    base_alloc, base_reserved = pyzen.cuda.memory_allocated(), pyzen.cuda.memory_reserved()
    x = pyzen.empty(1 << 20, device="cuda")  # 4 MiB
    assert pyzen.cuda.memory_allocated() - base_alloc >= 4 << 20
    reserved = pyzen.cuda.memory_reserved()
    del x
    assert pyzen.cuda.memory_allocated() == base_alloc
    assert pyzen.cuda.memory_reserved() == reserved  # cached, not freed
    y = pyzen.empty(1 << 20, device="cuda")
    assert pyzen.cuda.memory_reserved() == reserved  # the cached block came back
    del y
    pyzen.cuda.empty_cache()
    assert pyzen.cuda.memory_reserved() <= base_reserved


@gpu_only
def test_device_queries():
    assert pyzen.cuda.device_count() >= 1
    assert pyzen.cuda.get_device_name(0)
    assert cuda(np.ones(2)).device == pyzen.device("cuda:0")


# ---- dedicated training kernels: layer norm, multi-tensor AdamW ----
def _layer_norm_ref(x, w, b, g, eps):
    mu = x.mean(-1, keepdims=True)
    rs = 1 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    xhat = (x - mu) * rs
    gw = g * w
    dx = rs * (gw - gw.mean(-1, keepdims=True) - xhat * (gw * xhat).mean(-1, keepdims=True))
    lead = tuple(range(x.ndim - 1))
    return xhat * w + b, mu[..., 0], rs[..., 0], dx, (g * xhat).sum(lead), g.sum(lead)


@pytest.mark.parametrize("shape,offset", [((3, 5, 257), 0.0), ((600, 64), 0.0), ((4, 300), 1e3), ((2, 1), 0.0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_norm_kernels(device, rng, shape, offset, dtype):
    """Forward (out, mean, rstd) and backward (dx, dweight, dbias) against NumPy float64;
    600 rows use more than one block's partial sums for dweight and dbias; a mean far from
    zero checks the shifted statistics; one column is the degenerate row (xhat = 0)."""
    x = (offset + rng.standard_normal(shape)).astype(dtype)
    w, b = (1 + 0.5 * rng.standard_normal(shape[-1:])).astype(dtype), rng.standard_normal(shape[-1:]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    eps = 1e-5
    want = _layer_norm_ref(*(a.astype(np.float64) for a in (x, w, b, g)), eps)
    bk = be()
    out, mean, rstd = bk.layer_norm_forward(cuda(x)._data, cuda(w)._data, cuda(b)._data, eps)
    dx, dw, db = bk.layer_norm_backward(cuda(g)._data, cuda(x)._data, cuda(w)._data, mean, rstd, True)
    rtol, atol = (1e-10, 1e-10) if dtype == np.float64 else (2e-4, 2e-4)
    for got, ref, what in zip((out, mean, rstd, dx, dw, db), want, ("out", "mean", "rstd", "dx", "dweight", "dbias")):
        scale = 1 if what not in ("dweight", "dbias") else np.sqrt(x.size / shape[-1])
        assert_np_close(bk.to_numpy(got), ref, rtol, atol * scale, what=f"layer norm {what}")


def test_layer_norm_without_affine_and_strided_input(device, rng):
    a = rng.standard_normal((6, 40))
    from pyzen.backend import cuda_array

    bk = be()
    x = cuda_array.transpose(cuda(a.T.copy())._data, (1, 0))  # a non-contiguous view of a
    out, mean, rstd = bk.layer_norm_forward(x, None, None, 1e-5)
    want = _layer_norm_ref(a, np.ones(40), np.zeros(40), np.ones_like(a), 1e-5)
    assert_np_close(bk.to_numpy(out), want[0], 1e-10, 1e-10, what="out")
    dx, dw, db = bk.layer_norm_backward(cuda(np.ones_like(a))._data, x, None, mean, rstd, False)
    assert dw is None and db is None
    assert_np_close(bk.to_numpy(dx), want[3], 1e-10, 1e-10, what="dx")


@gpu_only
def test_layer_norm_weight_gradient_is_bitwise_deterministic(rng):
    bk = be()
    x, g, w = (cuda(rng.standard_normal(s), pyzen.float32)._data for s in ((3000, 96), (3000, 96), (96,)))
    _, mean, rstd = bk.layer_norm_forward(x, w, None, 1e-5)
    runs = [bk.to_numpy(bk.layer_norm_backward(g, x, w, mean, rstd, True)[1]) for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def _adamw_f32(p, g, m, v, vmax, step, lr, b1, b2, eps, wd, decoupled, maximize):
    """The CPU kernel's float32 update, operation by operation in NumPy float32."""
    f = np.float32
    g = -g if maximize else g
    if wd and decoupled:
        p = p * f(1 - lr * wd)
    elif wd:
        g = g + f(wd) * p
    m = m + f(1 - b1) * (g - m)
    v = v * f(b2) + (f(1 - b2) * g) * g
    if vmax is not None:
        vmax = np.maximum(vmax, v)
    d = np.sqrt(v if vmax is None else vmax) / f(np.sqrt(1 - b2**step)) + f(eps)
    return p - (f(lr / (1 - b1**step)) * m) / d, m, v, vmax


@pytest.mark.parametrize("decoupled,maximize,amsgrad", [(True, False, False), (False, True, True), (True, True, True)])
def test_adamw_one_launch_over_many_float32_tensors(device, rng, decoupled, maximize, amsgrad):
    """Tensors of mixed sizes (empty, one element, across chunk edges) and steps, updated
    together, agree with the CPU kernel's float32 arithmetic to a few ulps."""
    shapes, steps = [(3, 5), (0,), (1,), (1031,), (4, 600)], [1, 3, 2, 7, 1]
    kw = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1)
    f32 = lambda s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    ps, gs, ms = [f32(s) for s in shapes], [f32(s) for s in shapes], [0.1 * f32(s) for s in shapes]
    vs = [np.abs(0.1 * f32(s)) for s in shapes]
    vmaxs = [v * np.float32(1.5) for v in vs] if amsgrad else None
    dev = [[cuda(a)._data for a in xs] for xs in (ps, gs, ms, vs)]
    dvmax = [cuda(a)._data for a in vmaxs] if amsgrad else None
    be().adamw_step(*dev, dvmax, steps, decoupled=decoupled, maximize=maximize, **kw)
    for i in range(len(shapes)):
        want = _adamw_f32(ps[i], gs[i], ms[i], vs[i], vmaxs[i] if amsgrad else None, steps[i], kw["lr"], kw["beta1"],
                          kw["beta2"], kw["eps"], kw["weight_decay"], decoupled, maximize)
        got = (dev[0][i], dev[2][i], dev[3][i]) + ((dvmax[i],) if amsgrad else ())
        for a, ref in zip(got, want):
            np.testing.assert_allclose(be().to_numpy(a), ref, rtol=4e-7, atol=1e-7)


def test_adamw_mixed_dtypes_and_bad_arguments(device, rng):
    bk = be()
    p32, p64 = cuda(rng.standard_normal(4), pyzen.float32)._data, cuda(rng.standard_normal(3))._data
    state = [[cuda(np.zeros(4), pyzen.float32)._data, cuda(np.zeros(3))._data] for _ in range(2)]
    grads = [cuda(np.ones(4))._data, cuda(np.ones(3))._data]  # float64 grad for a float32 param: cast
    kw = dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False)
    before = bk.to_numpy(p32).astype(np.float64), bk.to_numpy(p64)
    bk.adamw_step([p32, p64], grads, *state, None, [1, 1], **kw)
    for p, b in zip((p32, p64), before):  # first step: p - lr * sign(g) (to within eps)
        assert_np_close(bk.to_numpy(p), b - 0.1, 1e-6, 1e-6)
    from pyzen.backend import cuda_array

    mod = cuda_array._cuda
    with pytest.raises(ValueError, match="adamw_step"):
        mod.adamw_step([p64._a], [grads[1]._a], [state[0][1]._a], [state[1][1]._a], None, [0.0], **kw)
    with pytest.raises(ValueError, match="adamw_step"):
        mod.adamw_step([p64._a], [], [], [], None, [], **kw)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_kernels(device, rng, smoothing, dtype):
    """Losses, lse and dlogits against NumPy float64 for rows that are ordinary, ignored,
    hold a -inf logit, or are shifted by 1e4 (where x - lse loses float32 precision)."""
    n, c, ignore = 6, 1031, -100
    x = 3 * rng.standard_normal((n, c))
    t = rng.integers(0, c, n)
    t[1] = ignore
    x[2, (t[2] + 1) % c] = -np.inf
    x[3] += 1e4
    x = x.astype(dtype)
    g = rng.standard_normal(n)
    xs = x.astype(np.float64)
    lse = np.log(np.exp(xs - xs.max(-1, keepdims=True)).sum(-1)) + xs.max(-1)
    tt = np.where(t == ignore, 0, t)
    finite_mean = np.where(np.isfinite(xs), xs, 0).mean(-1)  # the -inf row's mean is -inf: its smoothed loss is inf
    loss = (1 - smoothing) * (lse - xs[np.arange(n), tt]) + (smoothing * (lse - finite_mean) if smoothing else 0)
    if smoothing:
        loss[2] = np.inf
    loss[1] = 0
    d = np.exp(xs - lse[:, None]) - smoothing / c
    d[np.arange(n), tt] -= 1 - smoothing
    d *= g[:, None]
    d[1] = 0
    bk = be()
    got_loss, got_lse = bk.cross_entropy_forward(cuda(x)._data, cuda(t)._data, ignore, smoothing)
    dx = bk.cross_entropy_backward(cuda(g)._data, cuda(x)._data, cuda(t)._data, got_lse, ignore, smoothing)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert_np_close(bk.to_numpy(got_lse), lse, rtol, rtol, what="lse")
    assert_np_close(bk.to_numpy(got_loss), loss, rtol, rtol * 1e4, what="loss")  # float32: x[3] is rounded at 1e4
    assert_np_close(bk.to_numpy(dx), d, rtol, rtol, what="dlogits")


@pytest.mark.parametrize("d,tq,tk,causal", [(64, 45, 45, True), (64, 33, 70, False), (128, 37, 37, True), (128, 20, 9, False),
                                            (32, 70, 70, True), (32, 33, 50, False)])
def test_flash_attention_kernels(device, rng, d, tq, tk, causal):
    """out, lse, dq, dk, dv of the flash path (float32, no mask) against NumPy float64, with
    lengths that end inside a tile and Tq != Tk."""
    q, g = (rng.standard_normal((2, 3, tq, d)) for _ in range(2))
    k, v = (rng.standard_normal((2, 3, tk, d)) for _ in range(2))
    scale = 1 / np.sqrt(d)
    s = np.einsum("...id,...jd->...ij", q, k) * scale
    if causal:
        s = np.where(np.arange(tk) > np.arange(tq)[:, None], -np.inf, s)
    lse = np.log(np.exp(s - s.max(-1, keepdims=True)).sum(-1)) + s.max(-1)
    p = np.exp(s - lse[..., None])
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    want = (p @ v, lse, ds @ k * scale, np.swapaxes(ds, -1, -2) @ q * scale, np.swapaxes(p, -1, -2) @ g)
    bk = be()
    dq_, dk_, dv_ = (cuda(a, pyzen.float32)._data for a in (q, k, v))
    out, got_lse = bk.attention_forward(dq_, dk_, dv_, None, causal, scale)
    grads = bk.attention_backward(cuda(g, pyzen.float32)._data, dq_, dk_, dv_, out, got_lse, None, causal, scale)
    for got, ref, what in zip((out, got_lse) + tuple(grads), want, ("out", "lse", "dq", "dk", "dv")):
        assert_np_close(bk.to_numpy(got), ref, 1e-4, 1e-4, what=f"attention {what}")


@gpu_only
def test_flash_attention_backward_is_bitwise_deterministic(rng):
    bk = be()
    q, k, v, g = (cuda(rng.standard_normal((1, 2, 300, 64)), pyzen.float32)._data for _ in range(4))
    out, lse = bk.attention_forward(q, k, v, None, True, 0.125)
    runs = [[bk.to_numpy(a) for a in bk.attention_backward(g, q, k, v, out, lse, None, True, 0.125)] for _ in range(3)]
    assert all(np.array_equal(a, b) for r in runs[1:] for a, b in zip(runs[0], r))


@pytest.mark.parametrize("n,rows,cols,dtype", [(1, 3, 5, np.float32), (37, 5, 33, np.float64), (700, 1000, 7, np.float32),
                                               (1024, 2, 300, np.float32)])
def test_embedding_backward(device, rng, n, rows, cols, dtype):
    """Rows summed by index with repeats and negative (wrapped) indices, against NumPy float64,
    and bit for bit against the CPU's sequential np.add.at in the same dtype: the kernel adds
    each row's terms in position order, with no atomics."""
    index = rng.integers(-rows, rows, (n,))
    g = rng.standard_normal((n, cols)).astype(dtype)
    want = np.zeros((rows, cols))
    np.add.at(want, index, g.astype(np.float64))
    sequential = np.zeros((rows, cols), dtype)
    np.add.at(sequential, index, g)
    bk = be()
    got = bk.to_numpy(bk.embedding_backward(cuda(g)._data, cuda(index)._data, rows))
    assert_np_close(got, want, 1e-5 if dtype == np.float32 else 1e-12, 1e-5, what="embedding backward")
    np.testing.assert_array_equal(got, sequential)


def test_embedding_gradient_on_the_device_equals_the_cpu_bit_for_bit(device, rng):
    """nn.Embedding with a padding row, indices of shape (4, 9): the device's weight gradient is
    the CPU's, bit for bit."""
    idx = rng.integers(0, 11, (4, 9))
    g = rng.standard_normal((4, 9, 6)).astype(np.float32)
    grads = []
    for dev in ("cpu", "cuda"):
        pyzen.manual_seed(0)
        emb = pyzen.nn.Embedding(11, 6, padding_idx=3).to(dev)
        emb(pyzen.tensor(idx, device=dev)).backward(pyzen.tensor(g, device=dev))
        grads.append(to_np(emb.weight.grad))
    np.testing.assert_array_equal(grads[1], grads[0])
    assert not grads[0][3].any()


def test_embedding_backward_binding_refuses_bad_arguments(device):
    from pyzen.backend import cuda_array

    out, g, idx = (cuda(a)._data for a in (np.zeros((4, 3), np.float32), np.ones((5, 3), np.float32), np.zeros(5, np.int64)))
    for args, match in (((out, g, cuda(np.zeros(5, np.float32))._data), "int64"),
                        ((out, cuda(np.ones((5, 2), np.float32))._data, idx), "embedding_backward"),
                        ((cuda(np.zeros((4, 3), np.int64))._data, g, idx), "embedding_backward")):
        with pytest.raises((TypeError, ValueError), match=match):
            cuda_array._cuda.embedding_backward(*(a._a for a in args))


def test_clip_grad_norm_on_the_device(device, rng):
    """clip_grad_norm_ through the multi-tensor kernels (sums of squares, one scaling
    launch), over 60 gradients of mixed sizes (more than one launch's table), one empty and
    one non-contiguous: the norm and the clipped gradients against NumPy float64."""
    sizes = [(300, 7), (1,), (0,), (1025,), (5, 5)] + [(3,)] * 55
    grads = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    params = []
    for i, g in enumerate(grads):
        p = pyzen.zeros(g.shape, device="cuda", requires_grad=True)
        p.grad = cuda(g.T).T if i == 4 else cuda(g)  # one gradient is a transposed view
        params.append(p)
    total = float(pyzen.nn.utils.clip_grad_norm_(params, 0.5))
    want = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    assert total == pytest.approx(want, rel=1e-7)  # returned in the gradients' dtype
    for p, g in zip(params, grads):
        assert_np_close(to_np(p.grad), g * (0.5 / (want + 1e-6)), 1e-6, 1e-7, what="clipped gradient")


def test_foreach_bindings_refuse_bad_arguments(device):
    from pyzen.backend import cuda_array

    k = cuda_array._cuda
    x = cuda(np.ones(8, np.float32))._data
    with pytest.raises(ValueError, match="share memory"):
        k.foreach_mul_([x._a, cuda_array.reshape(x, (2, 4))._a], cuda(np.float32(2.0))._data._a)
    with pytest.raises(TypeError):
        k.foreach_mul_([x._a], cuda(np.float64(2.0))._data._a)
    with pytest.raises(TypeError):
        k.foreach_sum_squares(cuda(np.zeros(2))._data._a, [x._a, cuda(np.ones(3))._data._a])


@gpu_only
def test_embedding_backward_is_bitwise_deterministic(rng):
    bk = be()
    index = cuda(rng.integers(0, 50, (8192,)))._data  # many repeats per row
    g = cuda(rng.standard_normal((8192, 64)), pyzen.float32)._data
    runs = [bk.to_numpy(bk.embedding_backward(g, index, 50)) for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


# ---- sorting and sampling ----
def test_argsort_is_numpys_stable_argsort(device, rng):
    """Ties keep their order, NaN sorts last, -0.0 ties with 0.0, along any axis and dtype."""
    from pyzen.backend import cuda as bk

    pool = np.array([1.5, -2.0, 0.0, -0.0, np.nan, np.inf, -np.inf, 3.0, 1e-40], np.float32)
    cases = [rng.choice(pool, (3, 37)), rng.choice(pool, (2, 5, 4)).astype(np.float64),
             rng.integers(-3, 3, (4, 9)), rng.random((5, 6)) > 0.5, np.zeros((0, 3), np.float32)]
    for x in cases:
        for axis in range(x.ndim):
            got = bk.to_numpy(bk.argsort(cuda(x)._data, axis=axis))
            np.testing.assert_array_equal(got, np.argsort(x, axis=axis, kind="stable"), err_msg=f"{x.dtype} axis {axis}")


def test_topk_on_the_device_matches_the_cpu(device, rng):
    x = rng.standard_normal((4, 50)).astype(np.float32)
    x[0, :10] = 1.0  # ties
    for largest in (True, False):
        want = pyzen.topk(pyzen.tensor(x), 7, largest=largest)
        got = pyzen.topk(cuda(x), 7, largest=largest)
        assert got.values.device.type == "cuda"
        np.testing.assert_array_equal(to_np(got.indices), to_np(want.indices))
        np.testing.assert_array_equal(to_np(got.values), to_np(want.values))


def test_randperm_on_the_device(device):
    perms = [to_np(pyzen.randperm(1000, device="cuda")) for _ in range(2)]
    for p in perms:
        np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    assert not np.array_equal(perms[0], perms[1])


def test_multinomial_on_the_device(device):
    """Draw frequencies within 5 standard deviations of the weights, zero weights never
    drawn, draws without replacement all distinct; the result stays on the device."""
    w = np.array([[1.0, 2.0, 7.0, 0.0], [0.0, 0.0, 3.0, 1.0]])
    n = 20000
    draws = pyzen.multinomial(cuda(w), n, replacement=True)
    assert draws.device.type == "cuda" and draws.dtype is pyzen.int64 and draws.shape == (2, n)
    counts = np.stack([np.bincount(r, minlength=4) for r in to_np(draws)])
    p = w / w.sum(1, keepdims=True)
    assert np.all(np.abs(counts / n - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)
    once = to_np(pyzen.multinomial(cuda(w[:1]), 3))
    assert sorted(once[0]) == [0, 1, 2]
    with pytest.raises(ValueError, match="fewer than 3 categories"):
        pyzen.multinomial(cuda(w), 3)


# ---- end to end ----
def test_small_training_run_on_the_device(device, rng):
    """Least squares by gradient descent on the device: the loss falls to the noise floor
    that np.linalg.lstsq gives for the same data."""
    xs = rng.standard_normal((256, 8))
    ys = xs @ rng.standard_normal((8, 1)) + 0.01 * rng.standard_normal((256, 1))
    floor = np.mean((xs @ np.linalg.lstsq(xs, ys, rcond=None)[0] - ys) ** 2)
    X, Y = cuda(xs, pyzen.float32), cuda(ys, pyzen.float32)
    w = pyzen.zeros(8, 1, device="cuda", requires_grad=True)
    for _ in range(300):
        loss = ((X @ w - Y) ** 2).mean()
        w.grad = None
        loss.backward()
        with pyzen.no_grad():
            w -= 0.1 * w.grad
    assert float(loss) < floor * 1.05 + 1e-6


@pytest.mark.parametrize("cls,amsgrad,maximize", [("AdamW", False, False), ("Adam", True, True)])
def test_adam_steps_on_the_device_follow_the_formula(device, rng, cls, amsgrad, maximize):
    """Three optimizer steps on CUDA parameters against Adam's update written out in NumPy."""
    p0, grads = rng.standard_normal((4, 3)), [rng.standard_normal((4, 3)) for _ in range(3)]
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.99, 1e-8, 0.1
    w = pyzen.tensor(p0, dtype=pyzen.float64, device="cuda", requires_grad=True)
    opt = getattr(pyzen.optim, cls)([w], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad, maximize=maximize)
    p, m, v, vmax = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, 1):
        w.grad = pyzen.tensor(g, dtype=pyzen.float64, device="cuda")
        opt.step()
        g = -g if maximize else g
        if cls == "AdamW":
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax if amsgrad else v) / np.sqrt(1 - b2**t) + eps
        p = p - lr / (1 - b1**t) * m / denom
    assert w.device.type == "cuda"
    assert_np_close(to_np(w), p, 1e-12, 1e-14, what=f"{cls} amsgrad={amsgrad}")


def _gpt_losses(device_name: str, dropout: float = 0.0, steps: int = 20, n_embd: int = 32, bf16: bool = False) -> list[float]:
    from pyzen.examples.gpt.model import GPT, GPTConfig

    pyzen.manual_seed(0)  # the weights are drawn on the CPU, then moved: the same on both devices
    model = GPT(GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=n_embd, dropout=dropout)).to(device_name)
    opt = pyzen.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    losses = []
    for _ in range(steps):
        x, y = text_batch()
        with pyzen.autocast(device_name, dtype=pyzen.bfloat16, enabled=bf16):
            _, loss = model(x.to(device_name), y.to(device_name))
        opt.zero_grad()
        loss.backward()
        pyzen.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    assert all(p.device.type == device_name for p in model.parameters())
    return losses


def test_gpt_trains_on_the_device(device):
    """The GPT example, dropout included, trains on the device: every parameter, activation
    and optimizer state stays there, and the loss falls from ln(256) (a uniform guess over
    bytes) well below it in 20 AdamW steps."""
    losses = _gpt_losses("cuda", dropout=0.1)
    assert abs(losses[0] - np.log(256)) < 0.3
    assert np.mean(losses[-5:]) < np.log(256) - 0.8


def test_gpt_losses_on_the_device_match_the_cpu(device):
    """20 training steps of the GPT example give the CPU's losses within float32 rounding."""
    cpu = _gpt_losses("cpu")
    on_device = _gpt_losses("cuda")
    np.testing.assert_allclose(on_device, cpu, rtol=1e-4)


@gpu_only
def test_gpt_training_on_the_gpu_is_bitwise_reproducible():
    """Every kernel of a training step reduces in a fixed order (no float atomics: the
    embedding backward sorts), so two runs give the same losses to the bit, with and
    without bfloat16 autocast."""
    for bf16 in (False, True):
        runs = [_gpt_losses("cuda", steps=8, n_embd=128, bf16=bf16) for _ in range(2)]
        assert runs[0] == runs[1]


def test_gpt_under_bf16_autocast_matches_the_cpu(device):
    """Head dim 64: attention takes the bfloat16 tensor-core kernels on the GPU; the CPU runs
    float32 on the same rounded inputs. The two differ only by the kernels' bfloat16
    rounding of the probabilities, and both stay within 2% of float32 training."""
    cpu = _gpt_losses("cpu", steps=10, n_embd=128, bf16=True)
    on_device = _gpt_losses("cuda", steps=10, n_embd=128, bf16=True)
    np.testing.assert_allclose(on_device, cpu, rtol=1e-2)
    np.testing.assert_allclose(cpu, _gpt_losses("cpu", steps=10, n_embd=128), rtol=2e-2)


def test_main_job_runs_on_the_device(device, tmp_path, capsys):
    """`pyzen --device cuda`: pretraining, checkpoint, sample and fine-tuning, on a tiny configuration."""
    from pyzen.examples.gpt.__main__ import main as gpt_main

    out = tmp_path / "run"
    gpt_main(["--steps", "6", "--batch-size", "4", "--block-size", "16", "--n-layer", "2", "--n-head", "2",
              "--n-embd", "32", "--eval-every", "3", "--eval-iters", "1", "--max-bytes", "100000",
              "--finetune-steps", "2", "--device", "cuda", "--out", str(out)])
    text = capsys.readouterr().out
    state = pyzen.load(out / "gpt.safetensors")
    assert state["step"] == 6 and state["model"]["lm_head.weight"].device.type == "cpu"
    for needle in ("validation loss", "sample:", "fine-tuned: accuracy", "from scratch: accuracy"):
        assert needle in text
