"""Two builds of pyzen._C side by side in one process: the kernels whose code changed, timed
in alternation (best of 7) so that machine noise hits both alike.

    python benchmarks/ab_native_builds.py OLD/_C...so NEW/_C...so
"""
import importlib.util
import sys
import time

import numpy as np


def load(package: str, path: str):
    # The module's init function is PyInit__C: any package name works if the last part is _C.
    spec = importlib.util.spec_from_file_location(package + "._C", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernels(m, threads: int = 2) -> dict:
    """name -> a call of `m`'s kernel on fixed inputs (the same arrays for both builds)."""
    m.set_num_threads(threads)
    _, mean, rstd = m.layer_norm_forward(X, W, B, 1e-5)
    _, lse = m.cross_entropy_forward(LOGITS, TARGET, -100, 0.0)
    ones = np.ones(len(TARGET), np.float32)
    return {
        "layer_norm_forward 16384x1024": lambda: m.layer_norm_forward(X, W, B, 1e-5),
        "layer_norm_backward 16384x1024": lambda: m.layer_norm_backward(G, X, W, mean, rstd, True),
        "cross_entropy_forward 1024x50304": lambda: m.cross_entropy_forward(LOGITS, TARGET, -100, 0.0),
        "cross_entropy_backward 1024x50304": lambda: m.cross_entropy_backward(ones, LOGITS, TARGET, lse, -100, 0.0),
        "gelu_forward 16M tanh": lambda: m.gelu_forward(GELU_X, "tanh"),
    }


rng = np.random.default_rng(0)
X = rng.standard_normal((16384, 1024), dtype=np.float32)
G = rng.standard_normal((16384, 1024), dtype=np.float32)
W, B = np.ones(1024, np.float32), np.zeros(1024, np.float32)
LOGITS = rng.standard_normal((1024, 50304), dtype=np.float32)
TARGET = rng.integers(0, 50304, 1024)
GELU_X = rng.standard_normal(16 * 2**20, dtype=np.float32)

builds = {"old": kernels(load("old", sys.argv[1])), "new": kernels(load("new", sys.argv[2]))}
for name in builds["old"]:
    best = {"old": float("inf"), "new": float("inf")}
    for _ in range(7):  # alternate, so a burst of machine noise hits both builds alike
        for build, calls in builds.items():
            start = time.perf_counter()
            calls[name]()
            best[build] = min(best[build], time.perf_counter() - start)
    print(f"{name}: old {best['old'] * 1e3:.2f} ms, new {best['new'] * 1e3:.2f} ms, new/old {best['new'] / best['old']:.3f}")
