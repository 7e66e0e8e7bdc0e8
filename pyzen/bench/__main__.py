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
from .peaks import best_of, copy_bandwidth_gbs, fma_peak_gflops

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
    return {"kernel": case.kernel, "shape": list(case.shape), "unit": case.unit, "error": error, "ms": {k: v * 1e3 for k, v in best.items()}, "rate": rates}


HEADER = f"{'kernel':<22} {'shape':<22} {'pyzen ms':>9} {'rate':>14} {'% peak':>7} {'vs numpy':>9} {'vs torch':>9}"


def row_text(r: dict, fma: float, bandwidth: float) -> str:
    peak = fma if r["unit"] == "GFLOP/s" else bandwidth
    rate = r["rate"]["pyzen"]
    vs_torch = f"{r['ms']['torch'] / r['ms']['pyzen']:.2f}x" if "torch" in r["ms"] else "-"
    return (
        f"{r['kernel']:<22} {str(tuple(r['shape'])):<22} {r['ms']['pyzen']:>9.2f} {rate:>8.1f} {r['unit']:<5} {100 * rate / peak:>6.0f}% "
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
    fma, bandwidth = fma_peak_gflops(), copy_bandwidth_gbs()
    header = {
        "pyzen": __version__, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "threads": _C.get_num_threads(), "isa": _C.isa(), "load": os.getloadavg()[0], "fma_peak_gflops": fma, "copy_gbs": bandwidth,
    }
    print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in header.items()), flush=True)
    print(HEADER)
    rows = []
    for name in args.kernels:
        make, shapes = KERNELS[name]
        for shape in shapes:
            rows.append(measure(make(*shape), args.repeat))
            print(row_text(rows[-1], fma, bandwidth), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "results": rows}, f, indent=1)
    if args.plot and not plot(rows, args.plot):
        print("pyzen-bench: install matplotlib for --plot", file=sys.stderr)


if __name__ == "__main__":
    main()
