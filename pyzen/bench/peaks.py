"""The machine's roofs: the FMA peak of the active ISA, and copy bandwidth by working-set
size, with every thread busy.

A compute-bound row is compared with the FMA peak. A memory-bound row is compared with the
best plain loop (read, copy or in-place update) over a working set the size of its own
arrays (`copy_roof`), labelled with the cache level that holds them (L1, L2, L3 or DRAM):
bandwidth falls with the working set inside a level too, so a roof measured at another size
can sit above or below the row's, and a copy alone pays write-allocate reads that a kernel
updating what it read does not.
Each roof is measured until two successive figures agree within STABLE (or MAX_ROUNDS pass),
so that one disturbed measurement on a shared machine does not become the roof."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from .. import _C

STABLE = 0.03  # successive best figures within 3%
MAX_ROUNDS = 8


def best_of(fn, repeat: int) -> float:
    """The fastest of `repeat` timed calls, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def fma_peak_gflops(repeat: int = 5) -> float:
    """FLOP/s of independent FMA chains on every thread with the active ISA, in GFLOP/s."""
    iters = 2_000_000
    flops = _C.fma_loop(iters)
    return _stable(lambda: flops / best_of(lambda: _C.fma_loop(iters), repeat)) / 1e9


@dataclass(frozen=True)
class Level:
    name: str  # "L1", "L2", "L3" or "DRAM"
    size: int  # bytes: per core for a private cache, in all for a shared one
    shared: bool


def _sysfs_caches() -> list[Level]:
    """Data caches of CPU 0 from Linux's sysfs, smallest first (empty elsewhere)."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    levels = {}
    try:
        for entry in sorted(os.listdir(base)):
            if not entry.startswith("index"):
                continue
            def read(name: str, entry: str = entry) -> str:
                with open(os.path.join(base, entry, name)) as f:
                    return f.read().strip()

            if read("type") == "Instruction":
                continue
            size = read("size")
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
            shared_cpus = read("shared_cpu_list")
            level = int(read("level"))
            levels[level] = Level(f"L{level}", int(size.rstrip("KMG")) * scale, "," in shared_cpus or "-" in shared_cpus)
    except (OSError, ValueError):
        return []
    return [levels[k] for k in sorted(levels)]


def cache_levels() -> list[Level]:
    """L1, L2, L3 as the OS reports them (typical sizes where it does not), then DRAM."""
    caches = _sysfs_caches() or [Level("L1", 32 << 10, False), Level("L2", 1 << 20, False), Level("L3", 32 << 20, True)]
    last = caches[-1].size
    return caches + [Level("DRAM", max(4 * last, 256 << 20), True)]


def _stable(measure) -> float:
    """The best of repeated measurements, stopping once two successive ones agree."""
    rates: list[float] = []
    while len(rates) < MAX_ROUNDS:
        rates.append(measure())
        if len(rates) >= 2 and abs(rates[-1] - rates[-2]) <= STABLE * max(rates[-2:]):
            break
    return max(rates)


def copy_roof(footprint: float, threads: int) -> float:
    """GB/s (read + write) of the best plain loop (read, copy or in-place update) over a
    `footprint`-byte working set split among the threads: the most any kernel's arrays of
    that size can move."""
    per_thread = min(max(int(footprint / threads), 4096), 1 << 31)
    rounds = max(1, int(4e8 // per_thread))
    return max(_stable(lambda m=mode: _C.memory_bandwidth(per_thread, rounds, m)) for mode in ("read", "copy", "update")) / 1e9


def level_of(footprint: float, levels: list[Level], threads: int) -> str:
    """The first level that holds a `footprint`-byte working set (a thread's share of it, for
    a private cache)."""
    for level in levels:
        if level.name == "DRAM" or (footprint if level.shared else footprint / threads) <= level.size:
            return level.name
    raise AssertionError("unreachable: DRAM holds everything")


def level_roofs(levels: list[Level], threads: int) -> dict[str, float]:
    """Each level's roof at half its size (DRAM: 4x the last cache), for the header."""
    sizes = {lv.name: (lv.size * (threads if not lv.shared else 1)) // 2 for lv in levels}
    sizes["DRAM"] = min(levels[-1].size, 2 << 30)
    return {name: copy_roof(size, threads) for name, size in sizes.items()}
