"""Benchmark pyzen._C.matmul against numpy.matmul (float32), side by side in one process.

Validates every shape against a NumPy float64 reference before timing it. Run with the
environment's OpenBLAS overrides removed, or NumPy is slowed down:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_matmul.py

Options: --threads N (default: pyzen's default), --repeat R, --quick (small shapes only).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import time
from collections.abc import Callable

import numpy as np

from pyzen import _C

SQUARE = [256, 512, 1024, 2048]
TRANSFORMER = [(8192, 768, 768), (8192, 768, 3072)]  # (M, K, N): qkv/proj and MLP up


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


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


def best_times(fns: list[Callable[[], object]], repeat: int, min_time: float = 0.3) -> list[float]:
    """Best wall time of each function. The functions take turns, so that load from other
    processes on a shared machine hits all of them alike."""
    for fn in fns:
        fn()  # warm up (page faults, thread pool start)
    best = [float("inf")] * len(fns)
    start = time.perf_counter()
    runs = 0
    while runs < repeat or time.perf_counter() - start < min_time:
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
        runs += 1
    return best


def validate(a: np.ndarray, b: np.ndarray) -> float:
    """Max error of pyzen's float32 result, relative to |a| @ |b| (float64 reference)."""
    got = _C.matmul(a[None], b[None])[0].astype(np.float64)
    want = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    err = float(np.max(np.abs(got - want) / scale))
    tol = 1e-6 * a.shape[1] ** 0.5 * 8
    if not err <= tol:
        raise SystemExit(f"matmul {a.shape} x {b.shape}: relative error {err:.2e} > {tol:.2e}")
    return err


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=5)
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

    shapes = [(n, n, n) for n in SQUARE] + TRANSFORMER
    if args.quick:
        shapes = [(n, n, n) for n in SQUARE[:2]]
    rng = np.random.default_rng(0)
    header = f"{'M x K x N':>20} {'max rel err':>11} {'pyzen GF/s':>10} {'numpy GF/s':>10} {'pyzen/numpy':>11}"
    if torch is not None:
        header += f" {'torch GF/s':>10}"
    print(header)
    for m, k, n in shapes:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        err = validate(a, b)
        a3, b3 = a[None], b[None]
        flops = 2.0 * m * n * k
        fns: list[Callable[[], object]] = [lambda: _C.matmul(a3, b3), lambda: np.matmul(a, b)]
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fns.append(lambda: torch.matmul(ta, tb))
        times = best_times(fns, args.repeat)
        t_pz, t_np = times[0], times[1]
        line = (f"{f'{m} x {k} x {n}':>20} {err:11.1e} {flops / t_pz / 1e9:10.1f} "
                f"{flops / t_np / 1e9:10.1f} {t_np / t_pz:11.2f}")
        if torch is not None:
            line += f" {flops / times[2] / 1e9:10.1f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
