"""Benchmark pyzen's fused AdamW step against the NumPy reference and torch.optim.AdamW
(fused=True and the default foreach), side by side in one process (helpers from
bench_layer_norm.py). Validates one step against NumPy float64 first.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_adamw.py

Options: --threads N, --repeat R, --quick.
Bytes counted per float32 parameter without amsgrad: read p, g, m, v (16) + write p, m, v
(12) = 28.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from common import fmt_row, header, interleaved, load_average, roof_cell, try_torch
from pyzen import _C

HYPER = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)


def layout(total: int) -> list[int]:
    """A model-like mix: two big matrices, six medium ones, the rest in 64 small tensors."""
    big, mid = total // 4, total // 16
    small = (total - 2 * big - 6 * mid) // 64
    return [big, big] + [mid] * 6 + [small] * 64


def numpy_step(params, grads, ms, vs, step):  # the NumPy reference the native kernel replaced
    lr, b1, b2, eps, wd = (HYPER[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay"))
    for p, g, m, v in zip(params, grads, ms, vs):
        p *= 1 - lr * wd
        m += (1 - b1) * (g - m)
        v *= b2
        v += (1 - b2) * g * g
        p -= (lr / (1 - b1**step)) * m / (np.sqrt(v) / math.sqrt(1 - b2**step) + eps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=_C.get_num_threads())
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    _C.set_num_threads(args.threads)
    torch = try_torch(args.threads)
    print(header("adamw_step, float32, no amsgrad", args.threads))
    print(f"% roof: against the best plain loop over the same working set (pyzen-bench's roofs); torch: {torch.__version__ if torch else 'not installed'}")
    cols = ["params", "tensors", "pyzen ms best (median)", "GB/s", "% roof", "NumPy ms", "torch fused ms", "torch foreach ms",
            "vs NumPy", "vs fused", "vs foreach"]
    print(fmt_row(cols))
    print(fmt_row(["---"] * len(cols)))
    rng = np.random.default_rng(0)
    for total in [1 << 20] if args.quick else [1 << 20, 16 << 20]:
        sizes = layout(total)
        n = sum(sizes)

        def fresh():
            return [rng.standard_normal(s, dtype=np.float32) for s in sizes]

        params, grads = fresh(), fresh()
        ms, vs = [np.zeros(s, np.float32) for s in sizes], [np.zeros(s, np.float32) for s in sizes]
        # Validate one step from zero state on a copy: closed form p(1 - lr wd) - lr g / (|g| + eps).
        p0 = [p.copy() for p in params[:3]]
        _C.adamw_step(p0, grads[:3], [m.copy() for m in ms[:3]], [v.copy() for v in vs[:3]], None, [1, 1, 1],
                      decoupled=True, maximize=False, **HYPER)
        for got, p, g in zip(p0, params[:3], grads[:3]):
            g64 = g.astype(np.float64)
            want = p.astype(np.float64) * (1 - HYPER["lr"] * HYPER["weight_decay"]) - HYPER["lr"] * g64 / (np.abs(g64) + HYPER["eps"])
            if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
                raise SystemExit("adamw_step: first step does not match the closed form")
        step = [0]

        def pyzen_step():
            step[0] += 1
            _C.adamw_step(params, grads, ms, vs, None, [step[0]] * len(sizes), decoupled=True, maximize=False, **HYPER)

        np_state = ([p.copy() for p in params], [m.copy() for m in ms], [v.copy() for v in vs], [0])

        def numpy_ref():
            np_state[3][0] += 1
            numpy_step(np_state[0], grads, np_state[1], np_state[2], np_state[3][0])

        fns = [pyzen_step, numpy_ref]
        if torch is not None:
            opts = []
            for fused in (True, False):
                tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
                for t, g in zip(tp, grads):
                    t.grad = torch.from_numpy(g)
                kw = dict(fused=True) if fused else dict(foreach=True)
                opts.append(torch.optim.AdamW(tp, lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]), eps=HYPER["eps"],
                                              weight_decay=HYPER["weight_decay"], **kw))
            fns += [opts[0].step, opts[1].step]
        times = interleaved(fns, args.repeat)
        t_pz, t_np = times[0][0], times[1][0]  # best of the interleaved runs
        gbs = 28 * n / t_pz / 1e9
        t_fu, t_fe = (times[2][0], times[3][0]) if torch is not None else (float("nan"), float("nan"))
        print(fmt_row([f"{n / 2**20:.1f}M", str(len(sizes)), f"{t_pz * 1e3:.2f} ({times[0][1] * 1e3:.2f})", f"{gbs:.1f}", roof_cell(gbs, 16 * n, args.threads),
                       f"{t_np * 1e3:.1f}", f"{t_fu * 1e3:.2f}", f"{t_fe * 1e3:.2f}", f"{t_np / t_pz:.1f}x",
                       f"{t_fu / t_pz:.2f}x", f"{t_fe / t_pz:.2f}x"]))
    print(f"(best of interleaved repetitions, pyzen median in parentheses; load average after: {load_average()})")


if __name__ == "__main__":
    main()
