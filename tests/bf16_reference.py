"""bfloat16 rounding for the tests, written independently of pyzen's (which adds a bias and
masks bits): each float32 is compared with its two bfloat16 neighbours in float64 and the
nearer is taken, the even one on a tie. Slow and plain on purpose."""
from __future__ import annotations

import numpy as np


def round_bf16(x) -> np.ndarray:
    """float32 x rounded to the nearest bfloat16, ties to even, as float32; nan stays nan."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(all="ignore"):  # nan and inf lanes compute garbage that the last line drops
        return _round(x)


def _round(x: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(x).view(np.uint32).astype(np.uint64)
    down = bits & 0xFFFF0000  # towards zero
    up = down + 0x10000  # the next bfloat16 away from zero (may be inf)
    as_f64 = lambda b: b.astype(np.uint32).view(np.float32).astype(np.float64)  # noqa: E731
    lo, hi = as_f64(down), as_f64(up)
    # Past the largest bfloat16 the next step is 2^128 in magnitude, where rounding goes to inf.
    hi_dist = np.where(np.isinf(hi), 2.0**128 - np.abs(lo), np.abs(hi - lo))
    xd = x.astype(np.float64)
    d_lo = np.abs(xd - lo)
    d_hi = hi_dist - d_lo
    even_down = (down >> 16) % 2 == 0
    take_up = (d_hi < d_lo) | ((d_hi == d_lo) & ~even_down & (d_lo > 0))
    out = np.where(take_up, up, down).astype(np.uint32).view(np.float32)
    return np.where(np.isfinite(x), out, x).reshape(x.shape)
