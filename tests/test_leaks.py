"""No leaks: a training loop's memory stays flat, and graphs are freed as soon as they are dropped.

Two measures: the process's resident memory (catches native leaks: kernel buffers, pybind11
references) and the number of objects the garbage collector tracks (catches Python-level
leaks: graph nodes, tensors kept alive by a forgotten reference). PYZEN_LEAK_STEPS sets the
number of training steps (default 2000)."""
from __future__ import annotations

import gc
import os
import sys
import weakref

import numpy as np
import pytest

import pyzen
from pyzen.examples.gpt.model import GPT, GPTConfig
from pyzen.optim import AdamW

STEPS = int(os.environ.get("PYZEN_LEAK_STEPS", "2000"))
WARMUP = 200  # optimizer state, allocator pools and caches settle in the first steps

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_training_memory_stays_flat():
    pyzen.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.1))
    opt = AdamW(model.parameters(), lr=1e-3)
    x = pyzen.randint(0, 256, (4, 16))
    y = pyzen.randint(0, 256, (4, 16))

    def step() -> None:
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(WARMUP):
        step()
    rss, objects = _rss_mib(), _objects()
    for _ in range(STEPS):
        step()
    growth, new_objects = _rss_mib() - rss, _objects() - objects
    # A leak of one small tensor per step (the 4x16x256 logits are 64 KiB) would add 100+ MiB.
    assert growth < 4.0, f"resident memory grew by {growth:.2f} MiB over {STEPS} training steps"
    assert new_objects < 50, f"{new_objects} more Python objects after {STEPS} training steps"


def _graph(x: pyzen.Tensor) -> tuple[pyzen.Tensor, "weakref.ref"]:
    hidden = (x @ x.T).tanh()
    return (hidden.softmax(-1) * hidden).sum(), weakref.ref(hidden)


def test_dropped_graph_is_freed_without_the_garbage_collector():
    x = pyzen.randn(64, 64, requires_grad=True)
    gc.disable()  # graphs must not hold reference cycles: refcounting alone frees them
    try:
        for retain in (False, True):
            loss, hidden = _graph(x)
            loss.backward(retain_graph=retain)
            if retain:
                loss.backward()
            del loss
            assert hidden() is None, f"an intermediate outlived its graph (retain_graph={retain})"
        loss, hidden = _graph(x)  # never backpropagated
        del loss
        assert hidden() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("mode", ["no_grad", "retain_graph"])
def test_many_graphs_leave_memory_flat(mode):
    x = pyzen.randn(32, 32, requires_grad=True)

    def once() -> None:
        if mode == "no_grad":
            with pyzen.no_grad():
                _graph(x)
        else:
            loss, _ = _graph(x)
            loss.backward(retain_graph=True)
            loss.backward(retain_graph=True)
            x.grad = None

    for _ in range(50):
        once()
    rss, objects = _rss_mib(), _objects()
    for _ in range(1000):
        once()
    growth, new_objects = _rss_mib() - rss, _objects() - objects
    assert growth < 4.0, f"{mode}: resident memory grew by {growth:.2f} MiB over 1000 graphs"
    assert new_objects < 50, f"{mode}: {new_objects} more Python objects after 1000 graphs"


def test_native_kernels_do_not_leak():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((96, 64), dtype=np.float32)
    q = rng.standard_normal((1, 2, 32, 16), dtype=np.float32)
    x = pyzen.tensor(a, requires_grad=True)
    qt = pyzen.tensor(q, requires_grad=True)
    target = pyzen.randint(0, 64, (96,))
    ln = pyzen.nn.LayerNorm(64)

    def once() -> None:
        loss = pyzen.nn.functional.cross_entropy(pyzen.nn.functional.gelu(ln(x @ x[:64].T.contiguous())), target)
        loss = loss + pyzen.nn.functional.scaled_dot_product_attention(qt, qt, qt, is_causal=True).sum()
        loss.backward()

    for _ in range(50):
        once()
    rss = _rss_mib()
    for _ in range(2000):
        once()
    growth = _rss_mib() - rss
    assert growth < 4.0, f"resident memory grew by {growth:.2f} MiB over 2000 calls of each native kernel"
