"""Run the kernel benchmarks: `pyzen-bench [--kernels matmul attention ...] [--threads N]
[--repeat R] [--json out.json] [--plot out.png]`."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from .. import _C, __version__
from .cases import KERNELS, Case
from .peaks import best_of, cache_levels, copy_roof, fma_peak_gflops, level_of, level_roofs

TOLERANCE = 1e-3  # relative error allowed against the float64 reference


def measure(case: Case, repeat: int) -> dict:
    error = case.check()
    if not error <= TOLERANCE:
        raise AssertionError(f"{case.kernel} {case.shape}: relative error {error:.2e} against the float64 reference exceeds {TOLERANCE}")
    # Warm up, then time each implementation in blocks, alternating blocks over two rounds so
    # machine noise hits all of them alike. A pause before each block lets the previous
    # library's worker threads, which spin after a call, go back to sleep.
    impls = {"pyzen": case.pyzen, "numpy": case.numpy}
    if case.torch is not None:
        impls["torch"] = case.torch
    for fn in impls.values():
        fn()
    best = {name: float("inf") for name in impls}
    for _ in range(2):
        for name, fn in impls.items():
            time.sleep(0.05)
            fn()
            best[name] = min(best[name], best_of(fn, repeat))
    rates = {name: case.work / t / 1e9 for name, t in best.items()}
    return {"kernel": case.kernel, "shape": list(case.shape), "unit": case.unit, "footprint": case.footprint, "error": error,
            "ms": {k: v * 1e3 for k, v in best.items()}, "rate": rates}


HEADER = f"{'kernel':<22} {'shape':<22} {'pyzen ms':>9} {'rate':>14} {'% roof':>11} {'vs numpy':>9} {'vs torch':>9}"
OVER_ROOF = "over roof!"


def add_roof(r: dict, fma: float, levels: list, threads: int) -> None:
    """The row's roof: the FMA peak for FLOP rates; for byte rates, a plain copy of a working
    set as large as the row's arrays (labelled with the cache level they fit in). A rate above
    its roof is a measurement error (a disturbed run), flagged and never reported as a fraction."""
    if r["unit"] == "GFLOP/s":
        level, peak = "FMA", fma
    else:
        level, peak = level_of(r["footprint"], levels, threads), copy_roof(r["footprint"], threads)
    fraction = r["rate"]["pyzen"] / peak
    r["roof"] = {"level": level, "rate": peak, "fraction": fraction if fraction <= 1.0 else None}


def row_text(r: dict) -> str:
    rate, roof = r["rate"]["pyzen"], r["roof"]
    of_roof = f"{100 * roof['fraction']:.0f}% {roof['level']}" if roof["fraction"] is not None else OVER_ROOF
    vs_torch = f"{r['ms']['torch'] / r['ms']['pyzen']:.2f}x" if "torch" in r["ms"] else "-"
    return (
        f"{r['kernel']:<22} {str(tuple(r['shape'])):<22} {r['ms']['pyzen']:>9.2f} {rate:>8.1f} {r['unit']:<5} {of_roof:>11} "
        f"{r['ms']['numpy'] / r['ms']['pyzen']:>8.2f}x {vs_torch:>9}"
    )


def plot(rows: list[dict], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = [f"{r['kernel']}\n{tuple(r['shape'])}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 1.1), 4))
    for i, impl in enumerate(("numpy", "torch")):
        ratios = [r["ms"][impl] / r["ms"]["pyzen"] if impl in r["ms"] else 0 for r in rows]
        ax.bar([x + 0.4 * i for x in range(len(rows))], ratios, width=0.4, label=f"pyzen speed-up vs {impl}")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xticks([x + 0.2 for x in range(len(rows))], labels, fontsize=7)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="pyzen-bench", description=__doc__)
    ap.add_argument("--kernels", nargs="*", default=list(KERNELS), choices=list(KERNELS))
    ap.add_argument("--threads", type=int, default=None, help="threads for pyzen, NumPy's BLAS and PyTorch (default: all)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="write the results as JSON here")
    ap.add_argument("--plot", help="save a bar chart of the speed-ups here (needs matplotlib)")
    args = ap.parse_args(argv)
    if args.threads:
        _C.set_num_threads(args.threads)
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    threads = _C.get_num_threads()
    levels = cache_levels()
    fma, roofs = fma_peak_gflops(), level_roofs(levels, threads)
    header = {
        "pyzen": __version__, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "threads": threads, "isa": _C.isa(), "load": os.getloadavg()[0], "fma_peak_gflops": fma, "copy_gbs": roofs,
    }
    print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in header.items() if k != "copy_gbs"))
    print(f"roofs: FMA {fma:.0f} GFLOP/s; memory (best of read, copy, update; bytes read + written; {threads} threads) "
          "at half of each level: "
          + ", ".join(f"{lv.name} {roofs[lv.name]:.0f} GB/s ({lv.size >> 10} KiB{'' if lv.shared else ' per core'})"
                      for lv in levels), flush=True)
    print(HEADER)
    rows = []
    for name in args.kernels:
        make, shapes = KERNELS[name]
        for shape in shapes:
            rows.append(measure(make(*shape), args.repeat))
            add_roof(rows[-1], fma, levels, threads)
            print(row_text(rows[-1]), flush=True)
    if any(r["roof"]["fraction"] is None for r in rows):
        print(f"{OVER_ROOF}: measured faster than its roof, which no kernel can be: a measurement error "
              "(the row or the roof was disturbed by other load); rerun before reading anything into it.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "results": rows}, f, indent=1)
    if args.plot and not plot(rows, args.plot):
        print("pyzen-bench: install matplotlib for --plot", file=sys.stderr)


if __name__ == "__main__":
    main()
