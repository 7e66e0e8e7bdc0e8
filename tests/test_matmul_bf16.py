"""_C.matmul_bf16, autocast's bfloat16 product on AMX tiles or AVX512-BF16, on every such
path this CPU has: against float64 products of the operands rounded by the independent
reference (tests/bf16_reference.py), in every layout, across the kernels' tile and block
edges, and bit-identical for any thread count."""
from __future__ import annotations

import os

import numpy as np
import pytest

import pyzen._C as C
from bf16_reference import round_bf16 as ref_round
from test_config import _run  # a fresh interpreter importing the pyzen under test

NATIVE = [p for p in C.bf16_paths() if p != "float32"] or [
    pytest.param("none", marks=pytest.mark.skip(reason="this CPU has no bfloat16 kernel (AMX or AVX512-BF16)"))]


@pytest.fixture(params=NATIVE)
def native_path(request):
    """Run the test on each bfloat16 kernel this CPU has."""
    original = C.bf16_path()
    C.set_bf16_path(request.param)
    yield request.param
    C.set_bf16_path(original)


def _layout(x: np.ndarray, how: str) -> np.ndarray:
    """The same values as x (B, R, S) in another memory layout."""
    if how == "c":
        return x
    if how == "t":  # column-major (a transposed view)
        return np.ascontiguousarray(np.swapaxes(x, 1, 2)).swapaxes(1, 2)
    if how == "strided":  # neither dim unit-stride
        return np.repeat(np.repeat(x, 2, axis=1), 3, axis=2)[:, ::2, ::3]
    if how == "negative":
        return np.ascontiguousarray(x[:, ::-1, ::-1])[:, ::-1, ::-1]
    raise ValueError(how)


def _check(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    got = C.matmul_bf16(a, b)
    ra, rb = ref_round(a).astype(np.float64), ref_round(b).astype(np.float64)
    want = ra @ rb
    # bfloat16 products are exact in float32; only the float32 sum of K terms rounds, by at
    # most K * 2^-24 of the sum of the terms' magnitudes.
    bound = a.shape[2] * 2.0**-24 * (np.abs(ra) @ np.abs(rb)) + 1e-30
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.all(np.abs(got - want) <= bound), f"max error {np.abs(got - want).max()} > bound"
    return got


@pytest.mark.parametrize("la", ["c", "t", "strided", "negative"])
@pytest.mark.parametrize("lb", ["c", "t", "strided", "negative"])
def test_matmul_bf16_every_layout(native_path, rng, la, lb):
    a = rng.standard_normal((2, 37, 70)).astype(np.float32)
    b = rng.standard_normal((2, 70, 45)).astype(np.float32)
    got = _check(_layout(a, la), _layout(b, lb))
    assert np.abs(got - a.astype(np.float64) @ b).max() > 1e-3  # the operands were rounded


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 5, 300), (300, 5, 1), (31, 31, 31), (32, 32, 32), (33, 33, 33),
                                   (12, 64, 32), (13, 65, 33), (48, 96, 17), (64, 385, 64), (35, 769, 97), (257, 300, 290)])
@pytest.mark.parametrize("layout", ["cc", "ct", "tc"])
def test_matmul_bf16_tile_and_block_edges(native_path, rng, m, k, n, layout):
    a = _layout(rng.standard_normal((1, m, k)).astype(np.float32), "t" if layout[0] == "t" else "c")
    b = _layout(rng.standard_normal((1, k, n)).astype(np.float32), "t" if layout[1] == "t" else "c")
    _check(a, b)


def test_matmul_bf16_broadcast_batch_and_empty(native_path, rng):
    a = np.broadcast_to(rng.standard_normal((1, 20, 40)).astype(np.float32), (3, 20, 40))
    b = rng.standard_normal((3, 40, 50)).astype(np.float32)
    got = _check(a, b)
    assert np.array_equal(got[0], got[2]) or not np.array_equal(b[0], b[2])
    assert C.matmul_bf16(np.zeros((2, 0, 4), np.float32), np.zeros((2, 4, 3), np.float32)).shape == (2, 0, 3)
    assert np.array_equal(C.matmul_bf16(np.ones((1, 3, 0), np.float32), np.ones((1, 0, 2), np.float32)),
                          np.zeros((1, 3, 2), np.float32))


def test_matmul_bf16_special_values(native_path):
    a = np.array([[[np.nan, 1.0], [np.inf, 1.0], [1.0, 1.0], [2.0**-130, 0.0]]], np.float32)
    b = np.array([[[1.0], [2.0]]], np.float32)
    got = C.matmul_bf16(a, b)[0, :, 0]
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == 3.0
    # float32 denormals flush to zero when rounded, as on PyTorch's AMX path
    assert got[3] == 0.0


@pytest.mark.parametrize("shape", [(1, 300, 700, 200), (6, 64, 100, 70)])
def test_matmul_bf16_same_bits_for_any_thread_count(native_path, rng, shape):
    bsz, m, k, n = shape
    a = rng.standard_normal((bsz, m, k)).astype(np.float32)
    b = _layout(rng.standard_normal((bsz, k, n)).astype(np.float32), "t")
    original = C.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3):
            C.set_num_threads(t)
            outs.append(C.matmul_bf16(a, b))
    finally:
        C.set_num_threads(original)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_matmul_bf16_validates(native_path):
    f32 = np.ones((1, 2, 3), np.float32)
    with pytest.raises(TypeError, match="matmul_bf16.*float32"):
        C.matmul_bf16(f32.astype(np.float64), np.ones((1, 3, 2)))
    with pytest.raises(ValueError, match=r"matmul_bf16.*cannot be multiplied \(3 != 2\)"):
        C.matmul_bf16(f32, f32[:, :, :2])
    with pytest.raises(ValueError, match="matmul_bf16.*3-D"):
        C.matmul_bf16(f32[0], f32[0].T)


def test_matmul_bf16_refuses_the_float32_path():
    original = C.bf16_path()
    C.set_bf16_path("float32")
    try:
        with pytest.raises(ValueError, match="matmul_bf16.*'float32'"):
            C.matmul_bf16(np.ones((1, 2, 3), np.float32), np.ones((1, 3, 2), np.float32))
    finally:
        C.set_bf16_path(original)


def test_bf16_paths_follow_the_cpu_flags_and_setter():
    paths = C.bf16_paths()
    if os.path.exists("/proc/cpuinfo") and C.isa() == "avx512":
        flags = set()
        with open("/proc/cpuinfo") as f:
            flags = next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
        assert ("avx512_bf16" in paths) == ("avx512_bf16" in flags)
        has_amx = {"amx_tile", "amx_bf16", "avx512_bf16"} <= flags
        assert ("amx" in paths) == (has_amx and C.bf16_note() == ""), C.bf16_note()
    assert paths[-1] == "float32" and C.bf16_path() in paths
    fresh = _run("import pyzen._C as C; print(C.bf16_path())").stdout.strip()
    assert fresh == ("amx" if "amx" in paths else "float32")  # avx512_bf16 is opt-in (cpu_features.cpp)
    with pytest.raises(ValueError, match="set_bf16_path.*'bogus'"):
        C.set_bf16_path("bogus")
    assert C.bf16_path() in paths


@pytest.mark.parametrize("k", [0, 5, 700])
def test_matmul_bf16_bias_seeds_every_row(native_path, rng, k):
    a = rng.standard_normal((2, 45, k)).astype(np.float32)
    b = _layout(rng.standard_normal((2, k, 70)).astype(np.float32), "t")
    bias = rng.standard_normal(70).astype(np.float32)
    got = C.matmul_bf16(a, b, bias)
    want = ref_round(a).astype(np.float64) @ ref_round(b) + bias
    bound = (k + 1) * 2.0**-24 * (np.abs(ref_round(a)).astype(np.float64) @ np.abs(ref_round(b)) + np.abs(bias))
    assert np.all(np.abs(got - want) <= bound)
    with pytest.raises(ValueError, match=r"matmul_bf16: bias must have shape \(70,\)"):
        C.matmul_bf16(a, b, bias[:5])
