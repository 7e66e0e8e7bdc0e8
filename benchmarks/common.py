"""Helpers the kernel benchmarks share: machine description, load average, the memory roof
of a working set (pyzen-bench's measurement), interleaved timing, table formatting.

Importing this module sets OMP_WAIT_POLICY=PASSIVE unless it is set: pyzen and torch each
have an OpenMP pool, and with interleaved calls one library's spinning idle threads would
steal the cores the other needs (on a 2-core machine, torch.optim.AdamW ran up to 30x slower).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from pyzen import _C  # noqa: E402
from pyzen.bench.peaks import cache_levels, copy_roof, level_of  # noqa: E402

def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def try_torch(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def interleaved(fns: list[Callable[[], object]], repeat: int, min_time: float = 0.5) -> list[tuple[float, float]]:
    """(min, median) wall time of each function. The functions take turns, so that load from
    other processes on a shared machine hits all of them alike."""
    for fn in fns:
        fn()  # warm up (page faults, thread pool start)
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < repeat or time.perf_counter() - start < min_time:
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [(min(t), statistics.median(t)) for t in times]


def header(name: str, threads: int) -> str:
    return (f"{name}: {machine()}, {os.cpu_count()} CPUs, pyzen isa={_C.isa()} threads={threads} "
            f"compiler={_C.compiler()}, NumPy {np.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
            f"load average {load_average()}, {datetime.date.today()}")


def fmt_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def roof_cell(gbs: float, footprint: float, threads: int) -> str:
    """'NN% L3': gbs against the best plain loop over a working set of `footprint` bytes
    (pyzen.bench.peaks.copy_roof), or 'over roof!' where a disturbed run reads above it."""
    roof = copy_roof(footprint, threads)
    level = level_of(footprint, cache_levels(), threads)
    return f"{100 * gbs / roof:.0f}% {level}" if gbs <= roof else "over roof!"
