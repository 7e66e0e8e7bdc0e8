"""The host-side (Python) cost of pyzen's CUDA path, measurable without a GPU: a GPT
training step on a stand-in for `pyzen._cuda` whose arrays are plain Python objects and
whose kernels return at once. What is left is the time pyzen's backend, autograd, nn and
optim layers spend per step and per kernel call; on a GPU, a step of a small model cannot
be faster than this (the real module adds its pybind11 call and the launch). Also counts
the kernel calls and the reads back to the host (device syncs) per step.

    python benchmarks/bench_cuda_host_overhead.py [--steps 10] [--n-embd 128]

The model is the GPT main job's (4 layers, 4 heads, n_embd 128, T=64, batch 16): its head
dim of 32 takes the flash attention kernels; sizes cost nothing here.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
import types

import numpy as np

import pyzen
from pyzen.backend import cuda as cuda_backend
from pyzen.backend import cuda_array

KERNELS = ("fill", "iota", "copy", "unary", "binary", "where", "reduce", "cumulative", "softmax", "softmax_backward", "take",
           "gather", "scatter", "matmul", "layer_norm_forward", "layer_norm_backward", "cross_entropy_forward",
           "cross_entropy_backward", "attention_forward", "attention_backward", "adamw_step", "embedding_backward",
           "foreach_sum_squares", "foreach_mul_", "argsort", "random_uniform", "random_normal", "random_int",
           "synchronize")


class Array:
    """A device array's metadata, as pyzen._cuda.Array has it, with no memory behind it."""

    __slots__ = ("shape", "strides", "offset", "dtype", "buffer_id")
    _next_id = 0

    def __init__(self, shape, strides, offset, dtype, buffer_id=None):
        if buffer_id is None:
            Array._next_id += 1
            buffer_id = Array._next_id
        self.shape, self.strides, self.offset, self.dtype, self.buffer_id = tuple(shape), tuple(strides), offset, dtype, buffer_id

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))

    def view(self, shape, strides, offset):
        return Array(shape, strides, offset, self.dtype, self.buffer_id)

    def is_contiguous(self):
        expected = 1
        for s, st in zip(reversed(self.shape), reversed(self.strides)):
            if s != 1 and st != expected:
                return False
            expected *= s
        return True


def stand_in(counts: dict) -> types.ModuleType:
    """A module with pyzen._cuda's names: metadata-only arrays, kernels that count their calls."""
    m = types.ModuleType("null_cuda")
    m.Array = Array

    def empty(shape, dtype):
        strides, n = [], 1
        for s in reversed(shape):
            strides.insert(0, n)
            n *= s
        return Array(shape, strides, 0, dtype)

    def count(name):
        def kernel(*args, **kwargs):
            counts[name] = counts.get(name, 0) + 1

        return kernel

    def to_numpy(a):
        counts["to_numpy (sync)"] = counts.get("to_numpy (sync)", 0) + 1
        return np.zeros(a.shape, a.dtype)  # kernels write nothing: bounds checks read zeros

    m.empty = empty
    m.from_numpy = lambda a: empty(np.asarray(a).shape, np.asarray(a).dtype.name)
    m.to_numpy = to_numpy
    m.memory_allocated = m.memory_reserved = lambda: 0
    for name in KERNELS:
        setattr(m, name, count(name))
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--n-embd", type=int, default=128)
    args = ap.parse_args()
    counts: dict = {}
    module = stand_in(counts)
    pyzen.cuda._probe = lambda: (module, None)
    cuda_backend._cuda = cuda_array._cuda = module

    from pyzen.examples.gpt.model import GPT, GPTConfig

    config = dict(block_size=64, n_layer=4, n_head=4, n_embd=args.n_embd)
    pyzen.manual_seed(0)
    model = GPT(GPTConfig(**config)).to("cuda")
    opt = pyzen.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    rng = np.random.default_rng(0)
    x, y = (pyzen.tensor(rng.integers(0, 256, (16, 64))).to("cuda") for _ in range(2))

    def step():
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        pyzen.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(3):
        step()
    counts.clear()
    step()
    per_step = dict(counts)
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        best = min(best, (time.perf_counter() - t0) / args.steps)
    launches = sum(v for k, v in per_step.items() if k != "to_numpy (sync)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    print(f"GPT {config}, batch 16: pyzen host time per CUDA training step {best * 1e3:.2f} ms (best of 5 x {args.steps}), "
          f"{launches} kernel calls ({best / launches * 1e6:.1f} us each), "
          f"{per_step.get('to_numpy (sync)', 0)} reads back to the host")
    print("calls per step: " + ", ".join(f"{k} {v}" for k, v in sorted(per_step.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
