"""Benchmark pyzen's fused attention (scaled_dot_product_attention on the CPU: the native
flash kernels pyzen._C.attention_forward/backward) against PyTorch's CPU
torch.nn.functional.scaled_dot_product_attention, side by side in one process, float32.

Validates against a NumPy float64 reference first, then times forward and forward+backward
(through autograd in both libraries) for causal and full attention at the target shapes,
pyzen and torch taking turns (medians). Finally measures peak memory (peak RSS growth, in a fresh
subprocess per size) of a forward+backward at growing T to show it grows linearly.
PyTorch is optional: without it only pyzen is timed.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_attention.py

Options: --threads N (default: pyzen's default), --repeat R, --quick (small shapes, no
memory runs), --memory-only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

import pyzen
from common import machine
from pyzen import _C
from pyzen.backend import cpu

torch = None  # imported in main() when installed (optional: benchmarks only)

SHAPES = [(1, 12, 2048, 64), (4, 8, 512, 64)]  # (B, H, T, D)
QUICK = [(1, 4, 256, 64)]
MEMORY_T = [1024, 2048, 4096, 8192]



def flops(b: int, h: int, t: int, d: int, causal: bool) -> float:
    """Forward FLOPs (the two matmuls): 4*B*H*T*T*D, half of it when causal."""
    return 4.0 * b * h * t * t * d * (0.5 if causal else 1.0)


def medians(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median wall time of each function; the functions take turns so that load from other
    processes on a shared machine hits all of them alike."""
    for fn in fns:
        fn()  # warm up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def reference(q, k, v, causal):
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return p @ v, p


def validate() -> None:
    """Forward and gradients of pyzen (float32) against NumPy float64, causal and full."""
    rng = np.random.default_rng(0)
    for causal in (False, True):
        q, k, v, g = (rng.standard_normal((1, 2, 200, 64)).astype(np.float32) for _ in range(4))
        scale = 1 / 8.0
        out, lse = cpu.attention_forward(q, k, v, None, causal, scale)
        want, p = reference(q, k, v, causal)
        dq, dk, dv = cpu.attention_backward(g, q, k, v, out, lse, None, causal, scale)
        g64 = g.astype(np.float64)
        rdv = np.swapaxes(p, -1, -2) @ g64
        ds = p * (g64 @ np.swapaxes(v.astype(np.float64), -1, -2) - (g64 * want).sum(-1, keepdims=True)) * scale
        for name, got, ref in (("out", out, want), ("dq", dq, ds @ k), ("dk", dk, np.swapaxes(ds, -1, -2) @ q), ("dv", dv, rdv)):
            err = float(np.max(np.abs(got - ref)))
            if not err < 1e-4:
                raise SystemExit(f"attention validation failed: {name} causal={causal} max error {err:.2e}")
    print("validated against NumPy float64 (out, dq, dk, dv; causal and full): max error < 1e-4")


def time_shape(b: int, h: int, t: int, d: int, causal: bool, repeat: int) -> dict:
    rng = np.random.default_rng(1)
    qn, kn, vn, gn = (rng.standard_normal((b, h, t, d)).astype(np.float32) for _ in range(4))
    q, k, v = (pyzen.tensor(x, requires_grad=True) for x in (qn, kn, vn))
    g = pyzen.tensor(gn)

    def pz_fwd():
        with pyzen.no_grad():
            pyzen.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def pz_fwd_bwd():
        q.grad = k.grad = v.grad = None
        pyzen.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal).backward(g)

    fns = [pz_fwd, pz_fwd_bwd]
    if torch is not None:
        tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (qn, kn, vn))
        tg = torch.from_numpy(gn)
        F = torch.nn.functional

        def th_fwd():
            with torch.no_grad():
                F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)

        def th_fwd_bwd():
            tq.grad = tk.grad = tv.grad = None
            F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).backward(tg)

        fns += [th_fwd, th_fwd_bwd]
    ts = medians(fns, repeat)
    fl = flops(b, h, t, d, causal)
    row = {"shape": (b, h, t, d), "causal": causal, "pz_fwd": ts[0], "pz_fb": ts[1], "fwd_gflops": fl / ts[0] / 1e9, "fb_gflops": 3.5 * fl / ts[1] / 1e9}
    if torch is not None:
        row.update(th_fwd=ts[2], th_fb=ts[3], fwd_ratio=ts[2] / ts[0], fb_ratio=ts[3] / ts[1])
    return row


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(t: int, h: int, d: int) -> None:
    """Runs in a fresh process: prints the resident set before and its peak during one
    causal forward+backward (Linux: the peak is reset through /proc/self/clear_refs after
    the inputs exist; elsewhere maxrss, which also counts the import's peak)."""
    import resource

    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((1, h, t, d)).astype(np.float32) for _ in range(4))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        base, peak_of = _status_kib("VmRSS"), lambda: _status_kib("VmHWM")
    except OSError:
        base, peak_of = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out, lse = cpu.attention_forward(q, k, v, None, True, 1 / math.sqrt(d))
    grads = cpu.attention_backward(g, q, k, v, out, lse, None, True, 1 / math.sqrt(d))
    print(json.dumps({"base_kib": base, "peak_kib": peak_of(), "outputs_bytes": out.nbytes + lse.nbytes + sum(x.nbytes for x in grads)}))


def memory_table(h: int = 4, d: int = 64) -> list[dict]:
    rows = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    for t in MEMORY_T:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(t), str(h), str(d)], capture_output=True, text=True, env=env, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        grew = (r["peak_kib"] - r["base_kib"]) * 1024
        rows.append({"T": t, "grew_mib": grew / 2**20, "outputs_mib": r["outputs_bytes"] / 2**20, "scores_mib": h * t * t * 4 / 2**20})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--memory-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    global torch
    try:
        import torch
    except ImportError:
        torch = None
    if args.threads:
        _C.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    print(f"date {datetime.date.today()}  machine {machine()}  cores {os.cpu_count()}  load average {os.getloadavg()}")
    print(f"pyzen isa={_C.isa()} threads={_C.get_num_threads()} compiler={_C.compiler()}")
    print("torch " + (f"{torch.__version__} threads={torch.get_num_threads()}" if torch is not None else "not installed: pyzen only"))
    if not args.memory_only:
        validate()
        print(f"\n{'B x H x T x D':>18} {'mask':>6} | {'pyzen fwd':>10} {'GF/s':>5} {'fwd+bwd':>9} {'GF/s':>5} |" + (f" {'torch fwd':>10} {'fwd+bwd':>9} | {'fwd x':>5} {'f+b x':>5}" if torch is not None else ""))
        for b, h, t, d in QUICK if args.quick else SHAPES:
            for causal in (True, False):
                r = time_shape(b, h, t, d, causal, args.repeat)
                line = f"{f'{b} x {h} x {t} x {d}':>18} {'causal' if causal else 'full':>6} | {r['pz_fwd'] * 1e3:8.1f}ms {r['fwd_gflops']:5.0f} {r['pz_fb'] * 1e3:7.1f}ms {r['fb_gflops']:5.0f} |"
                if torch is not None:
                    line += f" {r['th_fwd'] * 1e3:8.1f}ms {r['th_fb'] * 1e3:7.1f}ms | {r['fwd_ratio']:5.2f} {r['fb_ratio']:5.2f}"
                print(line, flush=True)
        print("GF/s: forward 4*B*H*T*T*D FLOPs (half when causal), fwd+bwd 3.5x that; x = torch time / pyzen time")
        print(f"load average after: {os.getloadavg()}")
    if not args.quick:
        print("\npeak memory of one causal forward+backward, B=1 H=4 D=64 (peak RSS growth in a fresh process)")
        print(f"{'T':>6} {'grew MiB':>9} {'outputs MiB':>12} {'one T x T score matrix per head x H, MiB':>42}")
        for r in memory_table():
            print(f"{r['T']:>6} {r['grew_mib']:9.1f} {r['outputs_mib']:12.1f} {r['scores_mib']:42.0f}")


if __name__ == "__main__":
    main()
