"""Benchmark pyzen._C.matmul against numpy.matmul (float32), side by side in one process.

Validates every shape against a NumPy float64 reference before timing it. Run with the
environment's OpenBLAS overrides removed, or NumPy is slowed down:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_matmul.py

Shapes: square N = 256..4096, transformer projections (M = 8192 rows, K and N among 128,
384, 768, 1536, 3072) and the small shapes of a small GPT training step (linear layers of
768 tokens and batched attention-like products), each in the three layouts of a linear
layer's forward and backward: A.B, A.B^T and A^T.B (transposed operands are strided views).
Reports GFLOP/s (best of the interleaved repetitions), the ratio to NumPy and to PyTorch
(when importable), and the fraction of the machine's FMA peak measured with _C.fma_loop.

Options: --threads N (default: pyzen's default), --repeat R, --sets (comma list of
square, big, transformer, gpt), --layouts (comma list of nn, nt, tn), --quick.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from collections.abc import Callable

import numpy as np

from common import machine
from pyzen import _C

# (batch, M, K, N)
SETS = {
    "square": [(1, n, n, n) for n in (256, 512, 1024, 2048)],
    "big": [(1, 4096, 4096, 4096)],
    "transformer": [(1, 8192, 768, 768), (1, 8192, 768, 3072), (1, 8192, 3072, 768),
                    (1, 8192, 768, 2304), (1, 8192, 1536, 384), (1, 8192, 128, 384),
                    (1, 8192, 384, 128)],
    "gpt": [(1, 768, 128, 384), (1, 768, 128, 512), (1, 768, 512, 128), (1, 768, 128, 128),
            (48, 64, 32, 64), (48, 64, 64, 32)],
}



def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    infos = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} threads={i.get('num_threads')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return "; ".join(infos) or "none found"


def best_times(fns: list[Callable[[], object]], repeat: int, min_time: float = 0.05) -> list[float]:
    """Best wall time of each function. The functions take turns in blocks (each block at
    least `repeat` calls and `min_time` seconds), so that load from other processes hits all
    of them alike; before each block the script sleeps briefly, because OpenBLAS's, torch's
    and OpenMP's worker threads spin for a while after a call and would otherwise steal the
    cores from the next library (on 2 cores that made 2-thread timings meaningless)."""
    for fn in fns:
        fn()  # warm up (page faults, thread pool start)
    best = [float("inf")] * len(fns)
    for _ in range(3):
        for i, fn in enumerate(fns):
            time.sleep(0.12)
            start = time.perf_counter()
            runs = 0
            while runs < repeat or time.perf_counter() - start < min_time:
                t0 = time.perf_counter()
                fn()
                best[i] = min(best[i], time.perf_counter() - t0)
                runs += 1
    return best


def validate(a: np.ndarray, b: np.ndarray) -> float:
    """Max error of pyzen's float32 result, relative to |a| @ |b| (float64 reference)."""
    got = _C.matmul(a, b).astype(np.float64)
    want = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    err = float(np.max(np.abs(got - want) / scale))
    tol = 1e-6 * a.shape[2] ** 0.5 * 8
    if not err <= tol:
        raise SystemExit(f"matmul {a.shape} x {b.shape}: relative error {err:.2e} > {tol:.2e}")
    return err


def operands(rng: np.random.Generator, shape: tuple[int, int, int, int], layout: str):
    """(batch, M, K) and (batch, K, N) float32 operands; 't' makes that operand a transposed
    view of a contiguous array, as a linear layer's forward (A.W^T) and backward (G^T.X) pass them."""
    bsz, m, k, n = shape
    a = rng.standard_normal((bsz, k, m) if layout[0] == "t" else (bsz, m, k), dtype=np.float32)
    b = rng.standard_normal((bsz, n, k) if layout[1] == "t" else (bsz, k, n), dtype=np.float32)
    a = a.transpose(0, 2, 1) if layout[0] == "t" else a
    b = b.transpose(0, 2, 1) if layout[1] == "t" else b
    return a, b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sets", default="square,transformer,gpt")
    p.add_argument("--layouts", default="nn,nt,tn")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.threads:
        _C.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads, user_api="blas")
        except ImportError:
            pass

    try:
        import torch  # optional comparison; never a pyzen dependency
    except ImportError:
        torch = None
    if torch is not None and args.threads:
        torch.set_num_threads(args.threads)

    print(f"date:     {datetime.date.today()}")
    print(f"machine:  {machine()} ({os.cpu_count()} logical CPUs)")
    print(f"pyzen:    isa={_C.isa()} (supported {_C.supported_isas()}) threads={_C.get_num_threads()} "
          f"openmp={_C.has_openmp()} compiler={_C.compiler()}")
    print(f"numpy:    {np.__version__}, BLAS: {blas_info()}")
    if hasattr(os, "getloadavg"):
        print(f"load:     {os.getloadavg()[0]:.2f} (1-min average; other processes skew timings)")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if var in os.environ:
            print(f"warning:  {var}={os.environ[var]} is set")
    if torch is not None:
        print(f"torch:    {torch.__version__} threads={torch.get_num_threads()}")

    peak = _C.fma_loop(2_000_000) / best_times([lambda: _C.fma_loop(2_000_000)], 30)[0] / 1e9
    print(f"peak:     {peak:.1f} GFLOP/s (FMA loop, {_C.get_num_threads()} threads, {_C.isa()})")

    shapes = [s for name in args.sets.split(",") for s in SETS[name]]
    layouts = args.layouts.split(",")
    if args.quick:
        shapes, layouts = SETS["square"][:2] + SETS["gpt"][:2], ["nn"]
    rng = np.random.default_rng(0)
    header = (f"{'layout':>6} {'B x M x K x N':>22} {'max rel err':>11} {'pyzen GF/s':>10} "
              f"{'of peak':>7} {'numpy GF/s':>10} {'pyzen/numpy':>11}")
    if torch is not None:
        header += f" {'torch GF/s':>10} {'pyzen/torch':>11}"
    print(header)
    for layout in layouts:
        for shape in shapes:
            bsz, m, k, n = shape
            a, b = operands(rng, shape, layout)
            err = validate(a, b)
            a2, b2 = (a[0], b[0]) if bsz == 1 else (a, b)
            flops = 2.0 * bsz * m * n * k
            fns: list[Callable[[], object]] = [lambda: _C.matmul(a, b), lambda: np.matmul(a2, b2)]
            if torch is not None:
                ta, tb = torch.from_numpy(a2), torch.from_numpy(b2)
                fns.append(lambda: torch.matmul(ta, tb))
            times = best_times(fns, args.repeat)
            t_pz, t_np = times[0], times[1]
            name = f"{bsz} x {m} x {k} x {n}"
            line = (f"{layout:>6} {name:>22} {err:11.1e} {flops / t_pz / 1e9:10.1f} "
                    f"{flops / t_pz / 1e9 / peak:7.0%} {flops / t_np / 1e9:10.1f} {t_np / t_pz:11.2f}")
            if torch is not None:
                line += f" {flops / times[2] / 1e9:10.1f} {times[2] / t_pz:11.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
