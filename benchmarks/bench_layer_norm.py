"""Benchmark pyzen's layer norm (forward + backward) against the NumPy reference and PyTorch,
side by side in one process (timing helpers: common.py).

Validates against a NumPy float64 reference before timing. Run with the environment's
OpenBLAS overrides removed:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_layer_norm.py

Options: --threads N (default: pyzen's default), --repeat R, --quick (small shapes only).
Bytes counted per float32 element: forward 8 (read x, write y), backward 12 (read g, x;
write dx): 20 for forward + backward (weight, bias, mean, rstd are negligible).
"""

from __future__ import annotations

import argparse

import numpy as np

from common import fmt_row, header, interleaved, load_average, roof_cell, try_torch
from pyzen import _C

SHAPES = [(65536, 1024), (8192, 768), (4096, 4096), (1024, 100)]
QUICK = [(8192, 768), (1024, 100)]
EPS = 1e-5


# ---- layer norm ----
def numpy_forward(x, w, b, eps):  # the NumPy reference the native kernel replaced
    mean = x.mean(axis=-1)
    xc = x - mean[..., None]
    rstd = 1.0 / np.sqrt((xc * xc).mean(axis=-1) + x.dtype.type(eps))
    return (xc * rstd[..., None] * w + b).astype(x.dtype, copy=False), mean, rstd.astype(x.dtype, copy=False)


def numpy_backward(g, x, w, mean, rstd):
    xhat = (x - mean[..., None]) * rstd[..., None]
    dw, db = np.sum(g * xhat, axis=0), np.sum(g, axis=0)
    gw = g * w
    dx = rstd[..., None] * (gw - gw.mean(axis=-1, keepdims=True) - xhat * (gw * xhat).sum(axis=-1, keepdims=True) / x.shape[-1])
    return dx.astype(x.dtype, copy=False), dw, db


def validate(x, w, b, g) -> None:
    rows = slice(0, min(len(x), 512))
    out, mean, rstd = _C.layer_norm_forward(x[rows], w, b, EPS)
    dx, dw, db = _C.layer_norm_backward(g[rows], x[rows], w, mean, rstd, True)
    x64, g64 = x[rows].astype(np.float64), g[rows].astype(np.float64)
    o64, m64, r64 = numpy_forward(x64, w.astype(np.float64), b.astype(np.float64), EPS)
    dx64, dw64, db64 = numpy_backward(g64, x64, w.astype(np.float64), m64, r64)
    for name, got, want in [("out", out, o64), ("dx", dx, dx64), ("dweight", dw, dw64), ("dbias", db, db64)]:
        err = float(np.max(np.abs(got - want) / (1 + np.abs(want))))
        if not err < 1e-4:
            raise SystemExit(f"layer_norm {x.shape}: {name} error {err:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=_C.get_num_threads())
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    _C.set_num_threads(args.threads)
    torch = try_torch(args.threads)
    print(header("layer_norm forward+backward, float32", args.threads))
    print(f"% roof: against the best plain loop over the same working set (pyzen-bench's roofs); torch: {torch.__version__ if torch else 'not installed'}")
    print(fmt_row(["rows x C", "pyzen ms best (median)", "GB/s", "% roof", "NumPy ms", "torch ms", "vs NumPy", "vs torch"]))
    print(fmt_row(["---"] * 8))
    rng = np.random.default_rng(0)
    for rows, c in QUICK if args.quick else SHAPES:
        x = rng.standard_normal((rows, c), dtype=np.float32)
        g = rng.standard_normal((rows, c), dtype=np.float32)
        w = rng.standard_normal(c, dtype=np.float32)
        b = rng.standard_normal(c, dtype=np.float32)
        validate(x, w, b, g)

        def pyzen_step():
            _, mean, rstd = _C.layer_norm_forward(x, w, b, EPS)
            _C.layer_norm_backward(g, x, w, mean, rstd, True)

        def numpy_step():
            _, mean, rstd = numpy_forward(x, w, b, EPS)
            numpy_backward(g, x, w, mean, rstd)

        fns = [pyzen_step, numpy_step]
        if torch is not None:
            tx, tg, tw, tb = (torch.from_numpy(a) for a in (x, g, w, b))

            def torch_step():
                _, mean, rstd = torch.ops.aten.native_layer_norm(tx, [c], tw, tb, EPS)
                torch.ops.aten.native_layer_norm_backward(tg, tx, [c], mean, rstd, tw, tb, [True, True, True])

            fns.append(torch_step)
        times = interleaved(fns, args.repeat)
        t_pz, t_np = times[0][0], times[1][0]  # best of the interleaved runs
        gbs = 20 * rows * c / t_pz / 1e9
        t_th = times[2][0] if torch is not None else float("nan")
        print(fmt_row([f"{rows} x {c}", f"{t_pz * 1e3:.2f} ({times[0][1] * 1e3:.2f})", f"{gbs:.1f}", roof_cell(gbs, 16 * rows * c, args.threads), f"{t_np * 1e3:.1f}",
                       f"{t_th * 1e3:.2f}", f"{t_np / t_pz:.1f}x", f"{t_th / t_pz:.2f}x"]))
    print(f"(best of interleaved repetitions, pyzen median in parentheses; load average after: {load_average()})")


if __name__ == "__main__":
    main()
