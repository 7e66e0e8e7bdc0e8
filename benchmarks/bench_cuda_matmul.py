"""Benchmark pyzen's CUDA SGEMM against torch.matmul (cuBLAS, float32, TF32 disabled), side
by side in one process on one GPU.

    python benchmarks/bench_cuda_matmul.py                    # 4096^3, layout A.B
    python benchmarks/bench_cuda_matmul.py --sizes 1024,2048,4096 --layouts nn,nt,tn

Each shape is validated first: 64 rows of pyzen's result against NumPy float64. Timing uses
CUDA events recorded on the default stream, which both libraries launch on (pyzen._cuda
and torch share the device's primary context), interleaving the two libraries; a wall-clock
time over the same iterations (synchronised) is printed as a cross-check. The issue's
target: pyzen / cuBLAS >= 0.85 at 4096^3 on an H100.

Skips (exit 0 with a message) without PyTorch, without a CUDA device, or without pyzen's
CUDA module.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="4096", help="comma list of N for N x N x N products")
    p.add_argument("--layouts", default="nn", help="comma list of nn (A.B), nt (A.B^T), tn (A^T.B)")
    p.add_argument("--iters", type=int, default=20, help="timed iterations per library and round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the best is reported)")
    args = p.parse_args()

    try:
        import torch
    except ImportError:
        print("skipped: PyTorch is not installed (it is the cuBLAS reference)")
        return 0
    import pyzen

    if not pyzen.cuda.is_available() or not torch.cuda.is_available():
        print(f"skipped: no usable CUDA device (pyzen: {pyzen.cuda.unavailable_reason()}; "
              f"torch: {torch.cuda.is_available()})")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    print(f"device: {pyzen.cuda.get_device_name(0)} | torch {torch.__version__} "
          f"(CUDA {torch.version.cuda}) | pyzen._cuda runtime {pyzen._cuda.runtime_version()} | TF32 off")
    print(f"{'shape':>16} {'layout':>6} {'pyzen TFLOP/s':>14} {'cuBLAS TFLOP/s':>15} {'ratio':>6} "
          f"{'pyzen wall':>11} {'cuBLAS wall':>12}")
    rng = np.random.default_rng(0)
    for n in (int(s) for s in args.sizes.split(",")):
        for layout in args.layouts.split(","):
            a_host = rng.standard_normal((n, n), dtype=np.float32)
            b_host = rng.standard_normal((n, n), dtype=np.float32)
            a = pyzen.tensor(a_host, device="cuda")
            b = pyzen.tensor(b_host, device="cuda")
            ta, tb = torch.from_numpy(a_host).cuda(), torch.from_numpy(b_host).cuda()
            if layout == "nt":
                b, tb = b.T, tb.T
            elif layout == "tn":
                a, ta = a.T, ta.T
            ref_a = a_host.T if layout == "tn" else a_host
            ref_b = b_host.T if layout == "nt" else b_host

            got = (a @ b)[:64].numpy().astype(np.float64)
            want = ref_a[:64].astype(np.float64) @ ref_b.astype(np.float64)
            err = np.abs(got - want).max() / np.abs(want).max()
            if not err < 1e-4:
                print(f"{n}^3 {layout}: WRONG RESULT (max relative error {err:.2e}); not timed")
                return 1

            def run_pyzen():
                return a @ b

            def run_torch():
                return ta @ tb

            best = {"pyzen": float("inf"), "torch": float("inf")}
            wall = {"pyzen": float("inf"), "torch": float("inf")}
            for fn in (run_pyzen, run_torch):
                fn()  # warm up
            torch.cuda.synchronize()
            pyzen.cuda.synchronize()
            for _ in range(args.rounds):
                for name, fn in (("pyzen", run_pyzen), ("torch", run_torch)):
                    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    start.record()
                    for _ in range(args.iters):
                        fn()
                    stop.record()
                    stop.synchronize()
                    pyzen.cuda.synchronize()
                    wall[name] = min(wall[name], (time.perf_counter() - t0) / args.iters)
                    best[name] = min(best[name], start.elapsed_time(stop) / 1e3 / args.iters)
            flops = 2.0 * n * n * n
            tp, tt = flops / best["pyzen"] / 1e12, flops / best["torch"] / 1e12
            print(f"{f'{n}x{n}x{n}':>16} {layout:>6} {tp:14.1f} {tt:15.1f} {tp / tt:6.2f} "
                  f"{wall['pyzen'] * 1e3:9.2f}ms {wall['torch'] * 1e3:10.2f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
