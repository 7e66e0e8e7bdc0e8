"""pyzen-bench's roofs: every row is compared with a roof it cannot beat, and a row that
reads above its roof is flagged as a measurement error instead of being printed as a result."""
from __future__ import annotations

import pytest

import pyzen._C as C
from pyzen.bench.__main__ import OVER_ROOF, add_roof, row_text
from pyzen.bench.peaks import Level, cache_levels, copy_roof, level_of

LEVELS = [Level("L1", 48 << 10, False), Level("L2", 2 << 20, False), Level("L3", 300 << 20, True),
          Level("DRAM", 1200 << 20, True)]


@pytest.mark.parametrize("footprint,threads,level", [
    (64 << 10, 2, "L1"),  # 32 KiB a core: each core's share fits its private L1
    (64 << 10, 1, "L2"),
    (4 << 20, 2, "L2"),
    (5 << 20, 2, "L3"),
    (300 << 20, 2, "L3"),
    (301 << 20, 2, "DRAM"),
])
def test_level_of_takes_a_threads_share_of_private_caches(footprint, threads, level):
    assert level_of(footprint, LEVELS, threads) == level


def test_cache_levels_end_with_dram_larger_than_every_cache():
    levels = cache_levels()
    assert [lv.name for lv in levels][-1] == "DRAM"
    assert all(a.size < b.size for a, b in zip(levels, levels[1:]))


@pytest.mark.parametrize("mode", ["read", "copy", "update"])
def test_memory_bandwidth_is_positive_and_validates(mode):
    assert C.memory_bandwidth(64 << 10, 10, mode) > 0
    with pytest.raises(ValueError, match="memory_bandwidth: mode"):
        C.memory_bandwidth(64 << 10, 10, "write")
    with pytest.raises(ValueError, match="memory_bandwidth: expected"):
        C.memory_bandwidth(100, 10, mode)


def _row(unit: str, rate: float) -> dict:
    return {"kernel": "k", "shape": [8], "unit": unit, "footprint": 64 << 10, "error": 0.0,
            "ms": {"pyzen": 1.0, "numpy": 2.0}, "rate": {"pyzen": rate, "numpy": rate / 2}}


def test_a_rate_above_its_roof_is_flagged_not_reported():
    fma = 100.0
    below, above = _row("GFLOP/s", 80.0), _row("GFLOP/s", 130.0)
    for r in (below, above):
        add_roof(r, fma, LEVELS, 2)
    assert below["roof"] == {"level": "FMA", "rate": fma, "fraction": 0.8}
    assert "80% FMA" in row_text(below)
    assert above["roof"]["fraction"] is None
    assert OVER_ROOF in row_text(above) and "130%" not in row_text(above)


def test_a_memory_row_is_compared_with_a_loop_over_its_own_working_set():
    roof = copy_roof(64 << 10, C.get_num_threads())
    r = _row("GB/s", roof * 0.25)
    add_roof(r, 1.0, LEVELS, C.get_num_threads())
    assert r["roof"]["level"] == level_of(64 << 10, LEVELS, C.get_num_threads())
    fraction = r["roof"]["fraction"]
    assert fraction is not None and 0.05 < fraction < 1.0  # re-measured: about the same roof again
