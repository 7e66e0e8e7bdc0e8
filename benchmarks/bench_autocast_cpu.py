"""bfloat16 autocast on the CPU through the Tensor API: pyzen against PyTorch's CPU autocast
(oneDNN, AMX where the CPU has it), side by side in one process.

    python benchmarks/bench_autocast_cpu.py [--threads N] [--repeat R] [--paths amx,float32]

Rows:
  * matmul N^3 (forward only) and matmul N^3 forward + backward (a @ b, then .backward(g)),
    float32 tensors under autocast(dtype=bfloat16);
  * the MLP step: 3 x Linear(1024, 1024) with ReLU between, batch 4096, forward, a sum loss,
    backward (the issue's case).
Each pyzen row runs once per bfloat16 path this CPU has (pyzen._C.bf16_paths()); the
float32 path is the float32 kernels on rounded operands. Outputs are validated against a
float64 reference of the rounded operands before timing. Times: best of interleaved runs.
"""
from __future__ import annotations

import argparse

import numpy as np

from common import header, interleaved, try_torch

import pyzen
from pyzen import _C
from pyzen.backend.cpu import round_bf16


def matmul_case(lib, n: int, backward: bool, rng: np.random.Generator):
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    g = rng.standard_normal((n, n)).astype(np.float32)
    ta = lib.tensor(a, requires_grad=backward)
    tb = lib.tensor(b, requires_grad=backward)
    tg = lib.tensor(g)

    def run():
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = ta @ tb
        if backward:
            ta.grad = tb.grad = None
            out.backward(tg.to(out.dtype))
        return out

    want = round_bf16(a).astype(np.float64) @ round_bf16(b)
    return run, lambda out: np.abs(out.detach().float().numpy() - want).max() / np.abs(want).max()


def mlp_case(lib, rng: np.random.Generator, batch: int = 4096, width: int = 1024, layers: int = 3):
    lib.manual_seed(0)
    model = lib.nn.Sequential(*[m for _ in range(layers) for m in (lib.nn.Linear(width, width), lib.nn.ReLU())][:-1])
    x = lib.tensor(rng.standard_normal((batch, width)).astype(np.float32))

    def run():
        model.zero_grad(set_to_none=True)
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = model(x)
        out.float().sum().backward()
        return out

    return run, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=_C.get_num_threads())
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--paths", default=",".join(_C.bf16_paths()))
    args = ap.parse_args()
    _C.set_num_threads(args.threads)
    torch = try_torch(args.threads)
    paths = args.paths.split(",")
    print(header("bench_autocast_cpu", args.threads))
    print(f"bf16 paths: {_C.bf16_paths()} (default {_C.bf16_path()}); torch: {torch.__version__ if torch else 'not installed'}")
    rng = np.random.default_rng(0)
    cases = []
    for n in map(int, args.sizes.split(",")):
        for bwd in (False, True):
            name = f"matmul {n}^3 {'fwd+bwd' if bwd else 'fwd'}"
            flops = 2 * n**3 * (3 if bwd else 1)
            cases.append((name, flops, lambda lib, n=n, bwd=bwd: matmul_case(lib, n, bwd, rng)))
    cases.append(("MLP 3x1024, batch 4096, fwd+bwd", 3 * 3 * 2 * 4096 * 1024 * 1024, lambda lib: mlp_case(lib, rng)))

    cols = [f"pyzen {p}" for p in paths] + (["torch"] if torch else [])
    print("| case | " + " | ".join(f"{c} ms (GF/s)" for c in cols) + " | " +
          " | ".join(f"{c} / torch" for c in cols[:-1] if torch) + " |")
    original = _C.bf16_path()
    for name, flops, make in cases:
        fns = []
        for p in paths:
            run, check = make(pyzen)

            def timed(run=run, p=p):
                _C.set_bf16_path(p)
                try:
                    return run()
                finally:
                    _C.set_bf16_path(original)

            if check is not None:
                err = check(timed())
                assert err < 1e-2, f"{name} on {p}: relative error {err:.2e}"
            fns.append(timed)
        if torch:
            fns.append(make(torch)[0])
        best = [t[0] for t in interleaved(fns, args.repeat)]
        cells = [f"{t * 1e3:.1f} ({flops / t / 1e9:.0f})" for t in best]
        ratios = [f"{best[-1] / t:.2f}x" for t in best[:-1]] if torch else []
        print(f"| {name} | " + " | ".join(cells) + (" | " + " | ".join(ratios) if ratios else "") + " |")


if __name__ == "__main__":
    main()
