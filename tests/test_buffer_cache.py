"""Large results of pyzen._C come from a cache of released buffers (csrc/buffer_cache.h): the
next result of the same size reuses a buffer nobody holds any more, fully overwritten,
and never one that a view still reads."""
from __future__ import annotations

import numpy as np

import pyzen._C as C

MIB = 1 << 20


def _square(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((1, n, n)).astype(np.float32)


def test_a_released_large_result_is_reused_and_fully_overwritten():
    x, y = _square(512), _square(513)[:, :512, :512].copy()  # a result of exactly 1 MiB
    first = C.matmul(x, y)
    address = first.ctypes.data
    held = C._buffer_cache_bytes()
    del first
    assert C._buffer_cache_bytes() == held + MIB
    again = C.matmul(y, x)
    assert again.ctypes.data == address and C._buffer_cache_bytes() == held
    np.testing.assert_allclose(again[0], y[0].astype(np.float64) @ x[0], rtol=1e-4, atol=1e-3)
    assert again.flags.writeable and again.flags.c_contiguous


def test_a_buffer_a_view_still_reads_is_not_handed_out():
    x = _square(512)
    first = C.matmul(x, x)
    row = first[0, 7]
    want = row.copy()
    address = first.ctypes.data
    del first
    second = C.matmul(x + 1, x)
    assert second.ctypes.data != address
    np.testing.assert_array_equal(row, want)


def test_small_results_stay_numpy_allocations():
    small = C.matmul(_square(64), _square(64))
    assert small.flags.owndata
