"""pyzen without a usable GPU: the CUDA module imports, says why CUDA is unavailable, and
every CUDA entry point answers with a clear exception. Also the backend table's coverage
and the bindings' argument checks, which run before any CUDA call (size-0 arrays need no
device memory). These tests run on every machine."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
from pyzen.backend import cpu

try:
    from pyzen import _cuda
except ImportError:
    _cuda = None

needs_module = pytest.mark.skipif(_cuda is None, reason="pyzen was built without the CUDA module")
no_gpu = pytest.mark.skipif(pyzen.cuda.is_available(), reason="a CUDA device is available here")


def test_unavailable_reason_is_consistent():
    assert pyzen.cuda.is_available() == (pyzen.cuda.unavailable_reason() is None)
    if not pyzen.cuda.is_available():
        assert pyzen.cuda.device_count() == 0
        assert pyzen.cuda.unavailable_reason()


@no_gpu
def test_to_cuda_raises_with_the_reason():
    reason = pyzen.cuda.unavailable_reason()
    x = pyzen.ones(3)
    for move in (lambda: x.to("cuda"), lambda: x.cuda(), lambda: pyzen.zeros(2, device="cuda"),
                 lambda: pyzen.tensor([1.0], device="cuda"), pyzen.cuda.synchronize):
        with pytest.raises(RuntimeError, match="CUDA is not available") as e:
            move()
        assert reason in str(e.value)


@no_gpu
def test_memory_functions_without_a_device():
    assert pyzen.cuda.memory_allocated() == 0
    assert pyzen.cuda.memory_reserved() == 0
    pyzen.cuda.empty_cache()


def test_cpu_tensors_unaffected_by_to_cpu():
    x = pyzen.tensor([1.0, 2.0], requires_grad=True)
    assert x.to("cpu") is x and x.cpu() is x


@needs_module
def test_module_reports_status():
    assert isinstance(_cuda.status(), str)
    assert _cuda.runtime_version().count(".") == 1
    if not pyzen.cuda.is_available():
        assert _cuda.device_count() == 0
        with pytest.raises(ValueError, match="invalid device index"):
            _cuda.device_name(0)


@needs_module
def test_cuda_backend_has_every_cpu_primitive():
    from pyzen.backend import cuda as cuda_backend

    names = {n for n in vars(cpu) if not n.startswith("_") and callable(getattr(cpu, n))}
    names -= {"annotations", "Any", "Sequence", "default_generator"}
    missing = sorted(n for n in names if not hasattr(cuda_backend, n))
    assert not missing, f"primitives of backend/cpu.py missing from backend/cuda.py: {missing}"


def test_what_cuda_cannot_do_yet_names_itself(device):
    x = pyzen.zeros(3, 4, device="cuda")
    index = pyzen.tensor([0, 1], device="cuda")
    with pytest.raises(NotImplementedError, match="more than one index array is not implemented for CUDA"):
        x[index, index]


@needs_module
def test_size_zero_arrays_need_no_device():
    a = _cuda.empty((0, 3), "float32")
    assert a.shape == (0, 3) and a.strides == (3, 1) and a.dtype == "float32" and a.size == 0
    assert a.is_contiguous()
    out = _cuda.to_numpy(a)
    assert out.shape == (0, 3) and out.dtype == np.float32
    v = a.view([3, 0], [1, 3], 0)
    assert v.shape == (3, 0)


@needs_module
def test_bindings_validate_before_any_cuda_call():
    f32, f64 = _cuda.empty((0, 3), "float32"), _cuda.empty((0, 3), "float64")
    b8, i64 = _cuda.empty((0, 3), "bool"), _cuda.empty((0, 3), "int64")
    other = _cuda.empty((0, 4), "float32")
    with pytest.raises(TypeError, match="unsupported dtype 'float16'"):
        _cuda.empty((2,), "float16")
    with pytest.raises(ValueError, match="negative dimension"):
        _cuda.empty((-1,), "float32")
    with pytest.raises(ValueError, match="unknown op 'bogus'"):
        _cuda.binary("bogus", f32, f32, f32)
    with pytest.raises(TypeError, match="b must be float32, got float64"):
        _cuda.binary("add", f32, f32, f64)
    with pytest.raises(ValueError, match=r"a has shape \(0, 4\), expected \(0, 3\)"):
        _cuda.binary("add", f32, other, other)
    with pytest.raises(TypeError, match="out must be bool"):
        _cuda.binary("less", f32, f32, f32)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        _cuda.unary("exp", i64, i64)
    with pytest.raises(TypeError, match="cond must be bool"):
        _cuda.where(f32, f32, f32, f32)
    with pytest.raises(ValueError, match="cannot reduce 3 dims"):
        _cuda.reduce("sum", f32, f32, 3)
    with pytest.raises(TypeError, match="index must be int64"):
        _cuda.gather(f32, f32, f32, 0)
    with pytest.raises(ValueError, match="axis 2 out of range"):
        _cuda.take(f32, f32, _cuda.empty((0,), "int64"), 2)
    with pytest.raises(TypeError, match="cannot accumulate into bool"):
        _cuda.scatter(b8, i64, b8, 0, True)
    with pytest.raises(ValueError, match="cannot be multiplied"):
        _cuda.matmul(_cuda.empty((0, 0), "float32"), f32, f32)
    with pytest.raises(ValueError, match="expected low < high"):
        _cuda.random_int(_cuda.empty((0,), "int64"), 3, 3, 0, 0)


@needs_module
def test_views_cannot_leave_their_buffer():
    a = _cuda.empty((0,), "float32")
    with pytest.raises(ValueError, match="view reaches elements"):
        a.view([1], [1], 0)
