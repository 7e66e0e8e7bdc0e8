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


old = load("old", sys.argv[1])
new = load("new", sys.argv[2])
new.set_num_threads(2); old.set_num_threads(2)
rng = np.random.default_rng(0)
x = rng.standard_normal((16384, 1024), dtype=np.float32); w = np.ones(1024, np.float32); b = np.zeros(1024, np.float32)
g = rng.standard_normal((16384, 1024), dtype=np.float32)
logits = rng.standard_normal((1024, 50304), dtype=np.float32); t = rng.integers(0, 50304, 1024)
gx = rng.standard_normal(16 * 2**20, dtype=np.float32)
cases = {}
for name, m in (("old", old), ("new", new)):
    out, mean, rstd = m.layer_norm_forward(x, w, b, 1e-5)
    loss, lse = m.cross_entropy_forward(logits, t, -100, 0.0)
    cases[name] = {
        "layer_norm_forward 16384x1024": lambda m=m: m.layer_norm_forward(x, w, b, 1e-5),
        "layer_norm_backward 16384x1024": lambda m=m, mean=mean, rstd=rstd: m.layer_norm_backward(g, x, w, mean, rstd, True),
        "cross_entropy_forward 1024x50304": lambda m=m: m.cross_entropy_forward(logits, t, -100, 0.0),
        "cross_entropy_backward 1024x50304": lambda m=m, lse=lse: m.cross_entropy_backward(np.ones(1024, np.float32), logits, t, lse, -100, 0.0),
        "gelu_forward 16M tanh": lambda m=m: m.gelu_forward(gx, "tanh"),
    }
for k in cases["old"]:
    best = {"old": 1e9, "new": 1e9}
    for rep in range(7):
        for name in ("old", "new"):
            f = cases[name][k]; t0 = time.perf_counter(); f(); best[name] = min(best[name], time.perf_counter() - t0)
    print(f"{k}: old {best['old']*1e3:.2f} ms, new {best['new']*1e3:.2f} ms, new/old {best['new']/best['old']:.3f}")
