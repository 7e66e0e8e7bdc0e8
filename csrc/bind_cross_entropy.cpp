// pyzen._C.cross_entropy_forward / cross_entropy_backward: validate, release the GIL, call
// kernels/cross_entropy.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bind_util.h"
#include "kernels/cross_entropy.h"

namespace py = pybind11;
using pyzen::bind::check_aligned;
using pyzen::bind::dtype_str;
using pyzen::bind::new_array;
using pyzen::bind::run_kernel;
using pyzen::bind::shape_str;

namespace {

void check_contiguous(const char* op, const char* name, const py::array& x) {
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous");
  check_aligned(x, op, name);
}

// logits (N, C) float32/float64 and target (N,) int64, both C-contiguous.
void check_logits_target(const char* op, const py::array& logits, const py::array& target) {
  if (!logits.dtype().equal(py::dtype::of<float>()) && !logits.dtype().equal(py::dtype::of<double>()))
    throw py::type_error(std::string(op) + ": logits must be float32 or float64, got " + dtype_str(logits));
  if (logits.ndim() != 2)
    throw py::value_error(std::string(op) + ": logits must be 2-D (N, C), got shape " + shape_str(logits));
  check_contiguous(op, "logits", logits);
  if (!target.dtype().equal(py::dtype::of<int64_t>()))
    throw py::type_error(std::string(op) + ": target must be int64, got " + dtype_str(target));
  if (target.ndim() != 1 || target.shape(0) != logits.shape(0))
    throw py::value_error(std::string(op) + ": target has shape " + shape_str(target) + ", expected (" +
                          std::to_string(logits.shape(0)) + ",) for logits of shape " + shape_str(logits));
  check_contiguous(op, "target", target);
}

// v: (N,) of logits' dtype, C-contiguous.
void check_row_vector(const char* op, const char* name, const py::array& v, const py::array& logits) {
  if (!v.dtype().equal(logits.dtype()))
    throw py::type_error(std::string(op) + ": " + name + " has dtype " + dtype_str(v) + ", expected " +
                         dtype_str(logits) + " like logits");
  if (v.ndim() != 1 || v.shape(0) != logits.shape(0))
    throw py::value_error(std::string(op) + ": " + name + " has shape " + shape_str(v) + ", expected (" +
                          std::to_string(logits.shape(0)) + ",)");
  check_contiguous(op, name, v);
}

void check_smoothing(const char* op, double ls) {
  if (!(ls >= 0 && ls <= 1))
    throw py::value_error(std::string(op) + ": label_smoothing must be in [0, 1], got " + std::to_string(ls));
}

[[noreturn]] void bad_target(const char* op, const py::array& target, int64_t row, int64_t classes) {
  const int64_t t = static_cast<const int64_t*>(target.data())[row];
  throw py::index_error(std::string(op) + ": target[" + std::to_string(row) + "] = " + std::to_string(t) +
                        " is out of bounds for " + std::to_string(classes) + " classes");
}

template <typename T>
py::tuple forward_typed(const py::array& logits, const py::array& target, int64_t ignore_index, double ls) {
  const py::ssize_t N = logits.shape(0);
  py::array_t<T> losses = new_array<T>("cross_entropy_forward", {N});
  py::array_t<T> lse = new_array<T>("cross_entropy_forward", {N});
  pyzen::CrossEntropyForwardArgs<T> a{static_cast<const T*>(logits.data()), static_cast<const int64_t*>(target.data()),
                                      losses.mutable_data(), lse.mutable_data(), N, logits.shape(1),
                                      ignore_index, ls};
  int64_t bad;
  run_kernel("cross_entropy_forward", [&] { bad = pyzen::cross_entropy_forward(a); });
  if (bad >= 0) bad_target("cross_entropy_forward", target, bad, a.classes);
  return py::make_tuple(losses, lse);
}

py::tuple cross_entropy_forward(const py::array& logits, const py::array& target, int64_t ignore_index,
                                double label_smoothing) {
  const char* op = "cross_entropy_forward";
  check_logits_target(op, logits, target);
  check_smoothing(op, label_smoothing);
  return logits.itemsize() == 4 ? forward_typed<float>(logits, target, ignore_index, label_smoothing)
                                : forward_typed<double>(logits, target, ignore_index, label_smoothing);
}

template <typename T>
py::array backward_typed(const py::array& g, const py::array& logits, const py::array& target,
                         const py::array& lse, int64_t ignore_index, double ls) {
  py::array_t<T> d = new_array<T>("cross_entropy_backward", {logits.shape(0), logits.shape(1)});
  pyzen::CrossEntropyBackwardArgs<T> a{static_cast<const T*>(g.data()), static_cast<const T*>(logits.data()),
                                       static_cast<const int64_t*>(target.data()), static_cast<const T*>(lse.data()),
                                       d.mutable_data(), logits.shape(0), logits.shape(1), ignore_index, ls};
  int64_t bad;
  run_kernel("cross_entropy_backward", [&] { bad = pyzen::cross_entropy_backward(a); });
  if (bad >= 0) bad_target("cross_entropy_backward", target, bad, a.classes);
  return d;
}

py::array cross_entropy_backward(const py::array& g, const py::array& logits, const py::array& target,
                                 const py::array& lse, int64_t ignore_index, double label_smoothing) {
  const char* op = "cross_entropy_backward";
  check_logits_target(op, logits, target);
  check_row_vector(op, "g", g, logits);
  check_row_vector(op, "lse", lse, logits);
  check_smoothing(op, label_smoothing);
  return logits.itemsize() == 4 ? backward_typed<float>(g, logits, target, lse, ignore_index, label_smoothing)
                                : backward_typed<double>(g, logits, target, lse, ignore_index, label_smoothing);
}

}  // namespace

void pyzen_bind_cross_entropy(py::module_& m) {
  m.def("cross_entropy_forward", &cross_entropy_forward, py::arg("logits").noconvert(), py::arg("target").noconvert(),
        py::arg("ignore_index"), py::arg("label_smoothing"),
        R"doc(Per-row cross-entropy of C-contiguous logits (N, C) against int64 class indices target (N,).

Returns (losses, lse), each (N,) of logits' dtype: losses are 0 where target == ignore_index;
lse is each row's logsumexp. One pass over the logits. IndexError for a target outside [0, C).)doc");
  m.def("cross_entropy_backward", &cross_entropy_backward, py::arg("g").noconvert(), py::arg("logits").noconvert(),
        py::arg("target").noconvert(), py::arg("lse").noconvert(), py::arg("ignore_index"), py::arg("label_smoothing"),
        R"doc(d(sum_i g[i] * losses[i]) / d(logits) for cross_entropy_forward: a new (N, C) array.

g and lse: (N,) arrays of logits' dtype (lse from the forward). Ignored rows get zeros.)doc");
}
