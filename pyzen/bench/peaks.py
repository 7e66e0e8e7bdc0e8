"""The machine's peaks, measured at the start of a run: an FMA loop and a large copy."""
from __future__ import annotations

import time

import numpy as np

from .. import _C


def best_of(fn, repeat: int) -> float:
    """The fastest of `repeat` timed calls, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def fma_peak_gflops(repeat: int = 5) -> float:
    iters = 2_000_000
    flops = _C.fma_loop(iters)
    return flops / best_of(lambda: _C.fma_loop(iters), repeat) / 1e9


def copy_bandwidth_gbs(nbytes: int = 256 << 20, repeat: int = 5) -> float:
    """Bytes read plus bytes written per second by one large NumPy copy."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    return 2 * nbytes / best_of(lambda: np.copyto(dst, src), repeat) / 1e9
