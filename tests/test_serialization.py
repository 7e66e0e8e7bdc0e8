"""pyzen.save / pyzen.load: exact round trips, atomic writes, and clear errors for bad files."""
from __future__ import annotations

import io
import json
import os
import pathlib
import pickle
import struct
import sys
import tracemalloc

import numpy as np
import pytest

import pyzen
from pyzen import serialization
from pyzen.nn.parameter import Parameter
from conftest import to_np

safetensors = pytest.importorskip("safetensors")
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402


def assert_bitwise_equal(a, b):
    a, b = to_np(a), to_np(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def roundtrip(obj, path):
    pyzen.save(obj, path)
    return pyzen.load(path)


SPECIAL = {
    "float32": np.array([0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, np.finfo(np.float32).tiny, np.finfo(np.float32).max], np.float32),
    "float64": np.array([[np.pi, -0.0, 1e-310], [np.nan, np.inf, np.finfo(np.float64).max]], np.float64),
    "int64": np.array([np.iinfo(np.int64).min, -1, 0, 1, np.iinfo(np.int64).max], np.int64),
    "bool": np.array([[True, False, True]], np.bool_),
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_every_dtype_round_trips_exactly(name, tmp_path):
    arr = SPECIAL[name]
    t = pyzen.from_numpy(arr.copy())
    back = roundtrip(t, tmp_path / "t.safetensors")
    assert isinstance(back, pyzen.Tensor) and back.dtype == t.dtype
    assert_bitwise_equal(back, arr)


def test_shapes_views_and_memory(tmp_path):
    base = pyzen.arange(12, dtype=pyzen.float64).reshape(3, 4)
    obj = {
        "scalar": pyzen.tensor(2.5),
        "empty": pyzen.zeros(0, 3, dtype=pyzen.int64),
        "transposed": base.t(),
        "sliced": base[:, 1:3],
    }
    back = roundtrip(obj, tmp_path / "a.safetensors")
    assert back["scalar"].shape == () and back["scalar"].item() == 2.5
    assert back["empty"].shape == (0, 3) and back["empty"].dtype == pyzen.int64
    np.testing.assert_array_equal(to_np(back["transposed"]), np.arange(12.0).reshape(3, 4).T)
    np.testing.assert_array_equal(to_np(back["sliced"]), np.arange(12.0).reshape(3, 4)[:, 1:3])
    t = back["transposed"]
    t[0, 0] = 100.0  # loaded tensors own writable memory
    assert to_np(back["sliced"])[0, 0] == 1.0


def test_nested_checkpoint_round_trip(tmp_path):
    pyzen.manual_seed(7)
    pyzen.rand(3)
    p = Parameter(pyzen.randn(2, 3))
    opt = pyzen.optim.AdamW([p], lr=0.01)
    p.grad = pyzen.ones(2, 3)
    opt.step()
    ck = {
        "model": {"w": p.detach(), "b": pyzen.zeros(3, dtype=pyzen.float64)},
        "optimizer": opt.state_dict(),
        "step": 10,
        "rng": pyzen.get_rng_state(),
        "misc": [None, True, False, 2**200, -3, 0.1, float("nan"), float("inf"), "héllo ✓", (1, (2, "x")), []],
        "dtypes": [pyzen.float32, pyzen.bool],
        "int_keys": {0: "a", 1.5: "b", None: "c", (1, 2): "d", "__tensor__": "e"},
        "array": np.arange(4, dtype=np.int32),
        "np_scalars": [np.float64(0.25), np.int64(3), np.bool_(True)],
    }
    expected_draws = to_np(pyzen.rand(5))
    back = roundtrip(ck, tmp_path / "ck.safetensors")
    assert sorted(back) == sorted(ck)
    np.testing.assert_array_equal(to_np(back["model"]["w"]), to_np(p))
    assert back["step"] == 10 and isinstance(back["step"], int)
    assert back["rng"] == ck["rng"]
    misc = back["misc"]
    assert misc[:6] == [None, True, False, 2**200, -3, 0.1] and type(misc[1]) is bool
    assert np.isnan(misc[6]) and misc[7] == float("inf") and misc[8] == "héllo ✓"
    assert misc[9] == (1, (2, "x")) and isinstance(misc[9], tuple) and misc[10] == []
    assert back["dtypes"] == [pyzen.float32, pyzen.bool]
    assert back["int_keys"] == ck["int_keys"]
    assert back["array"].dtype == np.int32 and back["array"].tolist() == [0, 1, 2, 3]
    assert back["np_scalars"] == [0.25, 3, True]
    sd = back["optimizer"]
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"]) == [0] and sd["state"][0]["step"] == 1
    # The saved generator state reproduces the draws that followed it.
    pyzen.set_rng_state(back["rng"])
    np.testing.assert_array_equal(to_np(pyzen.rand(5)), expected_draws)


def test_optimizer_state_survives_save_load(tmp_path):
    def setup():
        p = Parameter(pyzen.tensor([1.0, -2.0, 3.0]))
        return p, pyzen.optim.Adam([p], lr=0.1, amsgrad=True)

    p1, opt1 = setup()
    for _ in range(3):
        p1.grad = p1.detach() * 2
        opt1.step()
    pyzen.save({"model": {"p": p1}, "optimizer": opt1.state_dict()}, tmp_path / "c.safetensors")
    ck = pyzen.load(tmp_path / "c.safetensors")
    p2, opt2 = setup()
    p2.data = ck["model"]["p"]
    opt2.load_state_dict(ck["optimizer"])
    for p, opt in ((p1, opt1), (p2, opt2)):
        for _ in range(3):
            p.grad = p.detach() * 2
            opt.step()
    assert_bitwise_equal(p1, p2)


def test_flat_state_dict_keeps_its_names(tmp_path):
    sd = {"wte.weight": pyzen.randn(4, 2), "ln.bias": pyzen.zeros(2)}
    pyzen.save(sd, tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), framework="np") as f:
        assert sorted(f.keys()) == ["ln.bias", "wte.weight"]
        np.testing.assert_array_equal(f.get_tensor("wte.weight"), to_np(sd["wte.weight"]))


def test_shared_tensors_are_stored_once(tmp_path):
    w = pyzen.randn(5, 3)
    other_view = w.detach()
    overlapping = w[1:]
    sd = {"wte.weight": w, "lm_head.weight": other_view, "part": overlapping, "again": w}
    back = roundtrip(sd, tmp_path / "s.safetensors")
    with safe_open(str(tmp_path / "s.safetensors"), framework="np") as f:
        assert sorted(f.keys()) == ["part", "wte.weight"]
    assert back["lm_head.weight"] is back["wte.weight"] and back["again"] is back["wte.weight"]
    np.testing.assert_array_equal(to_np(back["part"]), to_np(w)[1:])
    assert back["part"] is not back["wte.weight"]


def test_foreign_safetensors_file_loads_as_flat_dict(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"a": np.arange(3, dtype=np.int32), "b": np.ones((2, 2), np.float16)}, str(path))
    back = pyzen.load(path)
    assert back["a"].dtype == pyzen.int64 and back["a"].tolist() == [0, 1, 2]
    assert back["b"].dtype == pyzen.float32 and to_np(back["b"]).tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_file_objects_and_pathlike(tmp_path):
    buf = io.BytesIO()
    pyzen.save({"x": pyzen.arange(3)}, buf)
    buf.seek(0)
    assert pyzen.load(buf)["x"].tolist() == [0, 1, 2]
    path = pathlib.Path(tmp_path) / "p.safetensors"
    pyzen.save([pyzen.ones(1)], path)
    pyzen.save([pyzen.ones(2)], str(path))  # overwrite
    assert pyzen.load(path)[0].shape == (2,)
    assert os.listdir(tmp_path) == ["p.safetensors"]  # no temporary files left behind


def test_unsupported_objects_raise(tmp_path):
    with pytest.raises(TypeError, match="set"):
        pyzen.save({"a": {1, 2}}, tmp_path / "x")
    with pytest.raises(TypeError, match="a/b"):
        pyzen.save({"a": {"b": object()}}, tmp_path / "x")
    with pytest.raises(ValueError, match="weights_only"):
        pyzen.load(tmp_path / "x", weights_only=False)
    assert not os.path.exists(tmp_path / "x")


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    pyzen.save({"w": pyzen.ones(1000), "step": 1}, path)
    original = path.read_bytes()

    def crash_mid_write(fh, data):
        fh.write(data[: len(data) // 2])
        fh.flush()
        raise OSError("simulated crash: disk full")

    monkeypatch.setattr(serialization, "_write_all", crash_mid_write)
    with pytest.raises(OSError, match="simulated crash"):
        pyzen.save({"w": pyzen.zeros(1000), "step": 2}, path)
    assert os.listdir(tmp_path) == ["ck.safetensors"]
    assert path.read_bytes() == original
    assert pyzen.load(path)["step"] == 1


def test_failed_fsync_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    pyzen.save({"step": 1}, path)

    def failing_fsync(fd):
        raise OSError("simulated fsync failure")

    monkeypatch.setattr(serialization.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="fsync"):
        pyzen.save({"step": 2}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ck.safetensors"] and pyzen.load(path) == {"step": 1}


def _header_file(path, header: dict, data: bytes = b""):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _valid_bytes():
    buf = io.BytesIO()
    pyzen.save({"w": pyzen.arange(64, dtype=pyzen.float32), "step": 3}, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"\x01\x02\x03"), "3 bytes"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "header length"),
        (lambda p: p.write_bytes(_valid_bytes()[:-10]), "truncated"),
        (lambda p: p.write_bytes(_valid_bytes()[:40]), "truncated"),
        (lambda p: p.write_bytes(struct.pack("<Q", 20) + b"{not json at all!!!}"), "JSON"),
        (lambda p: p.write_bytes(struct.pack("<Q", 4) + b"[12]"), "JSON object"),
        (lambda p: _header_file(p, {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1000]}}, b"\0" * 16), "1000"),
        (lambda p: _header_file(p, {"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, b"\0" * 16), "need 20 bytes"),
        (lambda p: _header_file(p, {"w": {"dtype": "Q99", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), "dtype"),
        (lambda p: _header_file(p, {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "shape"),
        (lambda p: _header_file(p, {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"pyzen.structure": '{"__tensor__": "missing"}'}}, b"\0" * 4), "missing"),
        (lambda p: _header_file(p, {"__metadata__": {"pyzen.structure": "{[broken"}}), "structure"),
        (lambda p: _header_file(p, {"__metadata__": {"pyzen.structure": '{"__dict__": [[[1], 2]]}'}}), "structure"),
        (lambda p: _header_file(p, {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "v": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8), "overlap"),
        (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 100), "zip"),
    ],
)
def test_bad_files_raise_clear_errors(make, match, tmp_path):
    path = tmp_path / "bad.safetensors"
    make(path)
    with pytest.raises(ValueError, match=match) as info:
        pyzen.load(path)
    assert "bad.safetensors" in str(info.value)
    with pytest.raises(ValueError, match=match):  # the same checks for file objects
        pyzen.load(io.BytesIO(path.read_bytes()))


def test_huge_header_claim_fails_fast_without_allocating(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 10**15) + b"{}" + b"\0" * 64)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=str(10**15)):
            pyzen.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    path.write_bytes(struct.pack("<Q", 200 * 1024 * 1024) + b"\0" * 64)
    with pytest.raises(ValueError, match="header length"):
        pyzen.load(path)


class _Armed:
    """Unpickling this object creates the file named by `target`."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_pickle_files_are_rejected_and_never_unpickled(tmp_path):
    probe, sentinel = tmp_path / "probe", tmp_path / "sentinel"
    pickle.loads(pickle.dumps(_Armed(str(probe))))
    assert probe.exists(), "the test's pickle payload is not armed"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": _Armed(str(sentinel))}, protocol=4))
    with pytest.raises(ValueError, match="pickle"):
        pyzen.load(path)
    with pytest.raises(ValueError, match="pickle"):
        pyzen.load(io.BytesIO(path.read_bytes()))
    assert not sentinel.exists()


def test_missing_safetensors_gives_install_hint_and_load_needs_none(monkeypatch, tmp_path):
    pyzen.save({"a": pyzen.ones(2)}, tmp_path / "ok")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pyzen\[train\]"):
        pyzen.save({"a": 1}, tmp_path / "x")
    assert pyzen.load(tmp_path / "ok")["a"].tolist() == [1.0, 1.0]  # the reader is pyzen's own
