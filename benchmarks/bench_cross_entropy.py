"""Benchmark pyzen's fused cross-entropy (forward + backward) against the NumPy reference
and torch.nn.functional.cross_entropy, side by side in one process (helpers from
bench_layer_norm.py). Validates against NumPy float64 first.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cross_entropy.py

Options: --threads N, --repeat R, --quick, --large (adds 8192 x 50304: ~1.6 GB per array).
Bytes counted per float32 logit: forward 4 (read), backward 8 (read logits, write
dlogits): 12 for forward + backward.
"""

from __future__ import annotations

import argparse

import numpy as np

from common import fmt_row, header, interleaved, load_average, roof_cell, try_torch
from pyzen import _C

SHAPES = [(4096, 256), (1024, 50304), (4096, 50304)]
QUICK = [(4096, 256), (256, 50304)]
LARGE = [(8192, 50304)]
IGNORE = -100


def numpy_forward(x, t):  # the NumPy reference the native kernel replaced (no smoothing)
    m = x.max(axis=-1, keepdims=True)
    lse = (np.log(np.exp(x - m).sum(axis=-1, keepdims=True)) + m)[:, 0]
    keep = t != IGNORE
    nll = lse - np.take_along_axis(x, np.where(keep, t, 0)[:, None], axis=1)[:, 0]
    return np.where(keep, nll, 0).astype(x.dtype, copy=False), lse


def numpy_backward(g, x, t, lse):
    keep = t != IGNORE
    p = np.exp(x - lse[:, None])
    p[np.arange(len(t)), np.where(keep, t, 0)] -= 1
    return (p * np.where(keep, g, 0)[:, None]).astype(x.dtype, copy=False)


def validate(x, t) -> None:
    rows = slice(0, min(len(x), 64))
    xs, ts = x[rows], t[rows]
    losses, lse = _C.cross_entropy_forward(xs, ts, IGNORE, 0.0)
    g = np.ones(len(ts), np.float32)
    d = _C.cross_entropy_backward(g, xs, ts, lse, IGNORE, 0.0)
    l64, lse64 = numpy_forward(xs.astype(np.float64), ts)
    d64 = numpy_backward(g.astype(np.float64), xs.astype(np.float64), ts, lse64)
    for name, got, want in [("loss", losses, l64), ("dlogits", d, d64)]:
        err = float(np.max(np.abs(got - want) / (1 + np.abs(want))))
        if not err < 1e-5:
            raise SystemExit(f"cross_entropy {x.shape}: {name} error {err:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=_C.get_num_threads())
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--large", action="store_true")
    args = ap.parse_args()
    _C.set_num_threads(args.threads)
    torch = try_torch(args.threads)
    print(header("cross_entropy forward+backward, float32", args.threads))
    print(f"% roof: against the best plain loop over the same working set (pyzen-bench's roofs); torch: {torch.__version__ if torch else 'not installed'}")
    print(fmt_row(["N x C", "pyzen ms best (median)", "GB/s", "% roof", "NumPy ms", "torch ms", "vs NumPy", "vs torch"]))
    print(fmt_row(["---"] * 8))
    rng = np.random.default_rng(0)
    for n, c in (QUICK if args.quick else SHAPES) + (LARGE if args.large else []):
        x = rng.standard_normal((n, c), dtype=np.float32) * 2
        t = rng.integers(0, c, n)
        t[::16] = IGNORE
        validate(x, t)
        g = np.full(n, 1.0 / n, np.float32)

        def pyzen_step():
            _, lse = _C.cross_entropy_forward(x, t, IGNORE, 0.0)
            _C.cross_entropy_backward(g, x, t, lse, IGNORE, 0.0)

        def numpy_step():
            _, lse = numpy_forward(x, t)
            numpy_backward(g, x, t, lse)

        fns = [pyzen_step, numpy_step]
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            tt = torch.from_numpy(t)

            def torch_step():
                tx.grad = None
                torch.nn.functional.cross_entropy(tx, tt, ignore_index=IGNORE).backward()

            fns.append(torch_step)
        times = interleaved(fns, args.repeat)
        t_pz, t_np = times[0][0], times[1][0]  # best of the interleaved runs
        gbs = 12 * n * c / t_pz / 1e9
        t_th = times[2][0] if torch is not None else float("nan")
        print(fmt_row([f"{n} x {c}", f"{t_pz * 1e3:.2f} ({times[0][1] * 1e3:.2f})", f"{gbs:.1f}", roof_cell(gbs, 8 * n * c, args.threads), f"{t_np * 1e3:.1f}",
                       f"{t_th * 1e3:.2f}", f"{t_np / t_pz:.1f}x", f"{t_th / t_pz:.2f}x"]))
    print(f"(best of interleaved repetitions, pyzen median in parentheses; load average after: {load_average()})")


if __name__ == "__main__":
    main()
