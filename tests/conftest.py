"""Shared fixtures and helpers for the pyzen test suite.

Every expected value in this suite comes from NumPy in float64 (never from pyzen
itself, never from torch).  Helpers here convert between pyzen and NumPy and
compare with tolerances that depend on the dtype under test.
"""
from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
from hypothesis import settings

# Hypothesis: no example database on disk, no per-example deadline (timings vary on CI).
settings.register_profile("pyzen", database=None, deadline=None)
settings.load_profile("pyzen")

import pyzen

SEED = 1234


def fuzz_examples(default: int) -> int:
    """Examples (cases) per fuzz test: ``default`` keeps the suite quick; a long run sets
    PYZEN_FUZZ_EXAMPLES=<n>, e.g. 20000."""
    return int(os.environ.get("PYZEN_FUZZ_EXAMPLES", default))


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed NumPy's global RNG and pyzen's generator before every test."""
    np.random.seed(SEED)
    pyzen.manual_seed(SEED)
    yield


@pytest.fixture(params=pyzen._C.supported_isas())
def isa(request):
    """Run the test once per instruction set the native kernels support on this CPU,
    restoring the original choice afterwards."""
    original = pyzen._C.isa()
    pyzen._C.set_isa(request.param)
    assert pyzen._C.isa() == request.param
    yield request.param
    pyzen._C.set_isa(original)
    assert pyzen._C.isa() == original


@pytest.fixture(params=pyzen._C.bf16_paths())
def bf16_path(request):
    """Run the test once per bfloat16 path this CPU has (amx, avx512_bf16, and float32: the
    float32 kernels on rounded operands), restoring the original choice afterwards."""
    original = pyzen._C.bf16_path()
    pyzen._C.set_bf16_path(request.param)
    assert pyzen._C.bf16_path() == request.param
    yield request.param
    pyzen._C.set_bf16_path(original)


@pytest.fixture(params=["gpu", "emulated"])
def device(request, monkeypatch):
    """'cuda', on the real GPU (skipped without one) or on tests/cuda_emulator.py, the NumPy
    stand-in for pyzen._cuda that checks the Python layer of the CUDA backend everywhere."""
    if request.param == "gpu":
        if not pyzen.cuda.is_available():
            pytest.skip(pyzen.cuda.unavailable_reason())
    else:
        pytest.importorskip("pyzen._cuda", reason="pyzen was built without the CUDA module")
        import cuda_emulator

        cuda_emulator.use(monkeypatch)
    return "cuda"


with open(os.__file__, "rb") as _f:  # text every machine with Python has
    TEXT = np.frombuffer(_f.read(), dtype=np.uint8).astype(np.int64)


def text_batch(batch: int = 4, block: int = 16) -> tuple[pyzen.Tensor, pyzen.Tensor]:
    """(inputs, next-byte targets) of os.py's source, at starts drawn from pyzen's generator
    (as dropout draws), so a seed fixes the batches too."""
    starts = pyzen.randint(0, len(TEXT) - block - 1, (batch,)).numpy()
    rows = np.stack([TEXT[s : s + block + 1] for s in starts])
    return pyzen.from_numpy(rows[:, :-1].copy()), pyzen.from_numpy(rows[:, 1:].copy())


def rng_for(*key: object) -> np.random.Generator:
    """A NumPy Generator seeded deterministically from ``key`` (e.g. a test id)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


@pytest.fixture
def rng(request) -> np.random.Generator:
    return rng_for(request.node.nodeid)


def to_np(t) -> np.ndarray:
    """pyzen tensor -> NumPy array (detached, same dtype)."""
    if isinstance(t, pyzen.Tensor):
        return np.asarray(t.detach().numpy())
    return np.asarray(t)


def np_dtype(dtype) -> np.dtype:
    """NumPy dtype that corresponds to a pyzen dtype."""
    table = {
        pyzen.float32: np.float32,
        pyzen.float64: np.float64,
        pyzen.int64: np.int64,
        pyzen.bool: np.bool_,
    }
    return np.dtype(table[dtype])


def tol(dtype, rtol32: float = 1e-5, atol32: float = 1e-6):
    """(rtol, atol) for comparing a result of ``dtype`` to a float64 reference."""
    if dtype == pyzen.float64:
        return 1e-10, 1e-12
    return rtol32, atol32


def assert_np_close(actual, expected, rtol, atol, what=""):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what, equal_nan=True)


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient ``g`` back down to ``shape`` (NumPy reference)."""
    g = np.asarray(g, dtype=np.float64)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g.reshape(shape)
