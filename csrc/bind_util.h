// Helpers shared by the pyzen._C bindings: shapes as Python prints them, and allocations
// whose failure is a Python exception naming the op (never a bare "std::bad_alloc").
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "buffer_cache.h"

namespace pyzen::bind {

namespace py = pybind11;

// Python's tuple repr: (3,), (2, 3, 4), ().
inline std::string shape_str(const py::ssize_t* shape, size_t ndim) {
  std::string s = "(";
  for (size_t i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (ndim == 1 ? ",)" : ")");
}
inline std::string shape_str(const py::array& x) { return shape_str(x.shape(), static_cast<size_t>(x.ndim())); }
inline std::string shape_str(const std::vector<py::ssize_t>& s) { return shape_str(s.data(), s.size()); }
inline std::string strides_str(const py::array& x) { return shape_str(x.strides(), static_cast<size_t>(x.ndim())); }
inline std::string dtype_str(const py::array& x) { return py::str(x.dtype()); }

[[noreturn]] inline void raise_memory_error(const std::string& op, const std::string& what) {
  PyErr_SetString(PyExc_MemoryError, (op + ": out of memory for " + what).c_str());
  throw py::error_already_set();
}

// Kernels load whole items (and vectors of them): an array whose data does not start at a
// multiple of its item size (a view into a byte buffer at an odd offset) is refused.
inline void check_aligned(const py::array& x, const std::string& op, const std::string& name) {
  if (x.size() > 0 && reinterpret_cast<std::uintptr_t>(x.data()) % x.itemsize() != 0)
    throw py::value_error(op + ": " + name + " is not aligned to its item size (" +
                          std::to_string(x.itemsize()) + " bytes); pass a copy");
}

// A new C-contiguous result array. NumPy refuses absurd sizes with MemoryError ("Unable to
// allocate 4 TiB ...") or ValueError ("array is too big"); the same exception type comes
// back with the op and the result's shape in front. Shapes whose byte strides do not fit in
// 64 bits are refused here, before pybind11 computes those strides (signed overflow).
template <typename T>
py::array_t<T> new_array(const std::string& op, const std::vector<py::ssize_t>& shape) {
  int64_t stride = sizeof(T), bytes = sizeof(T);
  for (size_t i = shape.size(); i-- > 0;) {
    const bool overflow = (i > 0 && __builtin_mul_overflow(stride, shape[i], &stride)) ||
                          __builtin_mul_overflow(bytes, shape[i], &bytes);
    if (overflow) raise_memory_error(op, "a result of shape " + shape_str(shape) + " (more than 2^63 bytes)");
  }
  if (static_cast<size_t>(bytes) >= kMinCachedBytes) {  // buffer_cache.h: no page faults on reuse
    void* block = nullptr;
    try {
      block = cached_alloc(static_cast<size_t>(bytes));
    } catch (const std::bad_alloc&) {
      raise_memory_error(op, "a result of shape " + shape_str(shape));
    }
    py::capsule owner(block, [](void* p) { cached_free(p); });  // owns the block from here on
    return py::array_t<T>(shape, static_cast<T*>(block), owner);
  }
  try {
    return py::array_t<T>(shape);
  } catch (py::error_already_set& e) {
    const std::string msg = op + ": cannot allocate a result of shape " + shape_str(shape) + ": " +
                            std::string(py::str(e.value()));
    // NumPy raises a MemoryError subclass that cannot be built from a message alone.
    PyErr_SetString(e.matches(PyExc_MemoryError) ? PyExc_MemoryError : e.type().ptr(), msg.c_str());
    throw py::error_already_set();
  }
}

// Calls a kernel with the GIL released. A kernel that sizes its scratch by the problem
// (attention) allocates it before its parallel regions, so std::bad_alloc reaches here
// and becomes a MemoryError naming the op.
template <typename F>
void run_kernel(const std::string& op, F&& kernel) {
  try {
    py::gil_scoped_release release;
    std::forward<F>(kernel)();
  } catch (const std::bad_alloc&) {
    raise_memory_error(op, "the kernel's scratch buffers");
  }
}

}  // namespace pyzen::bind
