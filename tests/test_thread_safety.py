"""Thread safety: the native kernels release the GIL, and Python threads can share a model.

Grad mode is per thread (as in PyTorch), kernels keep no global scratch state, and a model's
forward pass only reads its parameters, so two threads running inference on one model at
once must each get exactly the result a single thread gets."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import pyzen
from pyzen.examples.gpt.model import GPT, GPTConfig


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "autocast_bf16"])
def test_two_threads_share_one_model_for_inference(bf16):
    """Under autocast too: the AMX kernels configure the tiles of every thread they run on."""
    pyzen.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, n_layer=2, n_head=4, n_embd=64)).eval()
    inputs = [pyzen.randint(0, 256, (2, 32)) for _ in range(2)]
    with pyzen.no_grad(), pyzen.autocast("cpu", dtype=pyzen.bfloat16, enabled=bf16):
        expected = [model(x)[0].numpy() for x in inputs]

    errors: list[str] = []
    start = threading.Barrier(2)

    def worker(i: int) -> None:
        start.wait()
        with pyzen.no_grad(), pyzen.autocast("cpu", dtype=pyzen.bfloat16, enabled=bf16):
            for _ in range(20):
                got = model(inputs[i])[0].numpy()
                if not np.array_equal(got, expected[i]):
                    errors.append(f"thread {i}: max difference {np.abs(got - expected[i]).max()}")
                    return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_grad_mode_is_per_thread():
    seen = {}

    def worker() -> None:
        seen["worker"] = pyzen.is_grad_enabled()

    with pyzen.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        seen["main"] = pyzen.is_grad_enabled()
    assert seen == {"worker": True, "main": False}


def _runs_without_the_gil(call) -> None:
    """Run `call` (one native kernel call, much longer than the GIL's 5 ms switch interval) in a
    thread while this thread spins: if the kernel held the GIL, this thread would be frozen from
    shortly after the call starts until it returns."""
    bounds = {}
    started = threading.Event()

    def worker() -> None:
        started.set()
        bounds["t0"] = time.perf_counter()
        try:
            call()
        except Exception as e:  # re-raised in the test's thread
            bounds["error"] = e
        bounds["t1"] = time.perf_counter()

    ticks = []
    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    if "error" in bounds:
        raise bounds["error"]
    t0, t1 = bounds["t0"], bounds["t1"]
    inside = [x for x in ticks if t0 < x < t1]
    assert t1 - t0 > 0.025, f"the call took only {t1 - t0:.3f} s: too quick to tell (make its input larger)"
    # Holding the GIL would let this thread run at most one switch interval (5 ms) of the call.
    assert inside and inside[-1] - inside[0] > 0.5 * (t1 - t0), (
        f"the main thread ran for {inside[-1] - inside[0] if inside else 0:.3f} s of a {t1 - t0:.3f} s kernel call"
    )


def test_kernels_release_the_gil():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 1536, 1536), dtype=np.float32)
    q = rng.standard_normal((1, 4, 4096, 64), dtype=np.float32)
    x = rng.random((65536, 1024), dtype=np.float32)
    w = np.ones(1024, dtype=np.float32)

    before = pyzen.get_num_threads()
    pyzen.set_num_threads(1)
    try:
        _runs_without_the_gil(lambda: pyzen._C.matmul(a, a))
        _runs_without_the_gil(lambda: pyzen._C.attention_forward(q, q, q, is_causal=True, scale=0.125))
        _runs_without_the_gil(lambda: pyzen._C.layer_norm_forward(x, w, w, 1e-5))
    finally:
        pyzen.set_num_threads(before)
