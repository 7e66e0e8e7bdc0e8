"""Benchmark pyzen's CUDA SGEMM against cuBLAS float32 (TF32 disabled), side by side in
one process on one GPU.

    python benchmarks/bench_cuda_matmul.py                    # 4096^3, layout A.B
    python benchmarks/bench_cuda_matmul.py --sizes 1024,2048,4096 --layouts nn,nt,tn

The reference is torch.matmul with torch.backends.cuda.matmul.allow_tf32 = False, timed
with CUDA events on the default stream, which pyzen launches on too (pyzen._cuda and
torch share the device's primary context). Without PyTorch, cublasSgemm is called
directly through ctypes (libcublas from the CUDA toolkit, default math mode: no TF32) and
both libraries are timed by the wall clock around synchronised batches of iterations.
The libraries take turns, round by round; the best round is reported. Each shape is
validated first: 64 rows of pyzen's result against NumPy float64.

--bf16: pyzen's matmul under pyzen.autocast(dtype=pyzen.bfloat16) (float32 tensors, the
operands rounded and packed to bfloat16, tensor cores; the packs are in its time) against
torch.matmul on bfloat16 tensors (needs PyTorch).

The issue's target: pyzen / cuBLAS >= 0.85 at 4096^3 on an H100.
Skips (exit 0 with a message) without a CUDA device, pyzen's CUDA module, or any cuBLAS.
"""
from __future__ import annotations

import argparse
import ctypes
import sys
import time

import numpy as np

import pyzen
from pyzen.backend.cpu import round_bf16


def torch_reference(dtype_name: str = "float32"):
    """(name, matmul on pyzen tensors' copies, event timer) from PyTorch, or None."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    def prepare(a_host, b_host, layout):
        dtype = getattr(torch, dtype_name)
        ta, tb = torch.from_numpy(a_host).cuda().to(dtype), torch.from_numpy(b_host).cuda().to(dtype)
        ta, tb = (ta.T if layout == "tn" else ta), (tb.T if layout == "nt" else tb)
        return lambda: ta @ tb

    def timer(fn, iters):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        pyzen.cuda.synchronize()
        start.record()
        for _ in range(iters):
            fn()
        stop.record()
        stop.synchronize()
        pyzen.cuda.synchronize()
        return start.elapsed_time(stop) / 1e3 / iters

    return f"torch {torch.__version__} (CUDA {torch.version.cuda}), CUDA events", prepare, timer


def cublas_reference():
    """The same from libcublas through ctypes, timed by the wall clock, or None."""
    for name in ("libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return None
    handle = ctypes.c_void_p()
    if lib.cublasCreate_v2(ctypes.byref(handle)) != 0:
        return None
    one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)

    def prepare(a_host, b_host, layout):
        n_rows, n_inner, n_cols = a_host.shape[0], a_host.shape[1], b_host.shape[1]
        a, b = pyzen.tensor(a_host, device="cuda"), pyzen.tensor(b_host, device="cuda")
        out = pyzen.empty(n_rows, n_cols, device="cuda")
        # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B's and A's row-major
        # buffers read column-major are B^T and A^T, so "N" means "as stored".
        op_b, op_a = (1 if layout == "nt" else 0), (1 if layout == "tn" else 0)
        pa, pb, pc = (t._data._a.data_ptr for t in (a, b, out))
        m, n, k = n_cols, n_rows, n_inner

        def run():
            status = lib.cublasSgemm_v2(handle, op_b, op_a, m, n, k, ctypes.byref(one), ctypes.c_void_p(pb),
                                        b_host.shape[1], ctypes.c_void_p(pa), a_host.shape[1], ctypes.byref(zero),
                                        ctypes.c_void_p(pc), m)
            if status != 0:
                raise RuntimeError(f"cublasSgemm_v2 failed with status {status}")

        return run

    def timer(fn, iters):
        pyzen.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        pyzen.cuda.synchronize()
        return (time.perf_counter() - t0) / iters

    return f"libcublas via ctypes ({name}), wall clock", prepare, timer


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="4096", help="comma list of N for N x N x N products")
    p.add_argument("--layouts", default="nn", help="comma list of nn (A.B), nt (A.B^T), tn (A^T.B)")
    p.add_argument("--iters", type=int, default=20, help="timed iterations per library and round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the best is reported)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 operands (autocast) against torch bfloat16")
    args = p.parse_args()

    if not pyzen.cuda.is_available():
        print(f"skipped: no usable CUDA device ({pyzen.cuda.unavailable_reason()})")
        return 0
    ref = torch_reference("bfloat16") if args.bf16 else torch_reference() or cublas_reference()
    if ref is None:
        print("skipped: neither PyTorch with CUDA nor libcublas is available as the cuBLAS reference")
        return 0
    ref_name, ref_prepare, timer = ref
    print(f"device: {pyzen.cuda.get_device_name(0)} | reference: {ref_name} | TF32 off | "
          f"pyzen._cuda runtime {pyzen._cuda.runtime_version()}")
    print(f"{'shape':>16} {'layout':>6} {'pyzen TFLOP/s':>14} {'cuBLAS TFLOP/s':>15} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for n in (int(s) for s in args.sizes.split(",")):
        for layout in args.layouts.split(","):
            a_host = rng.standard_normal((n, n), dtype=np.float32)
            b_host = rng.standard_normal((n, n), dtype=np.float32)
            a, b = pyzen.tensor(a_host, device="cuda"), pyzen.tensor(b_host, device="cuda")
            a, b = (a.T if layout == "tn" else a), (b.T if layout == "nt" else b)
            ref_a = (a_host.T if layout == "tn" else a_host).astype(np.float64)
            ref_b = (b_host.T if layout == "nt" else b_host).astype(np.float64)
            if args.bf16:  # the reference on the operands rounded to bfloat16 (tested in tests/test_autocast.py)
                ref_a, ref_b = (round_bf16(x.astype(np.float32)).astype(np.float64) for x in (ref_a, ref_b))
            want = ref_a[:64] @ ref_b
            with pyzen.autocast("cuda", dtype=pyzen.bfloat16, enabled=args.bf16):
                got = (a @ b)[:64].numpy()
            err = np.abs(got - want).max() / np.abs(want).max()
            if not err < 1e-4:
                print(f"{n}^3 {layout}: pyzen gives a WRONG RESULT (max relative error {err:.2e}); not timed")
                return 1

            def run_pyzen():
                with pyzen.autocast("cuda", dtype=pyzen.bfloat16, enabled=args.bf16):
                    return a @ b

            run_ref = ref_prepare(a_host, b_host, layout)
            best = {"pyzen": float("inf"), "ref": float("inf")}
            for fn in (run_pyzen, run_ref):
                fn()  # warm up
            for _ in range(args.rounds):
                for name, fn in (("pyzen", run_pyzen), ("ref", run_ref)):
                    best[name] = min(best[name], timer(fn, args.iters))
            flops = 2.0 * n * n * n
            tp, tr = flops / best["pyzen"] / 1e12, flops / best["ref"] / 1e12
            print(f"{f'{n}x{n}x{n}':>16} {layout:>6} {tp:14.1f} {tr:15.1f} {tp / tr:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
