// pyzen._C.layer_norm_forward / layer_norm_backward: validate, release the GIL, call
// kernels/layer_norm.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bind_util.h"
#include "kernels/layer_norm.h"

namespace py = pybind11;
using pyzen::bind::check_aligned;
using pyzen::bind::dtype_str;
using pyzen::bind::new_array;
using pyzen::bind::run_kernel;
using pyzen::bind::shape_str;

namespace {

// x: a C-contiguous float32/float64 array of at least one dimension.
void check_input(const char* op, const char* name, const py::array& x) {
  if (!x.dtype().equal(py::dtype::of<float>()) && !x.dtype().equal(py::dtype::of<double>()))
    throw py::type_error(std::string(op) + ": " + name + " must be float32 or float64, got " + dtype_str(x));
  if (x.ndim() < 1)
    throw py::value_error(std::string(op) + ": " + name + " must have at least one dimension, got shape ()");
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous");
  check_aligned(x, op, name);
}

// y: same dtype as x, shape == expected_shape (printed), C-contiguous.
void check_like(const char* op, const char* name, const py::array& y, const py::array& x,
                const std::vector<py::ssize_t>& shape) {
  if (!y.dtype().equal(x.dtype()))
    throw py::type_error(std::string(op) + ": " + name + " has dtype " + dtype_str(y) + ", expected " + dtype_str(x));
  bool same = y.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = y.shape(i) == shape[i];
  if (!same)
    throw py::value_error(std::string(op) + ": " + name + " has shape " + shape_str(y) + ", expected " + shape_str(shape));
  if (!(y.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous");
  check_aligned(y, op, name);
}

std::vector<py::ssize_t> dims(const py::array& x, py::ssize_t ndim) {
  return std::vector<py::ssize_t>(x.shape(), x.shape() + ndim);
}

template <typename T>
const T* ptr(const std::optional<py::array>& a) {
  return a ? static_cast<const T*>(a->data()) : nullptr;
}

template <typename T>
py::tuple forward_typed(const py::array& x, const std::optional<py::array>& weight,
                        const std::optional<py::array>& bias, double eps) {
  const auto lead = dims(x, x.ndim() - 1);
  const char* op = "layer_norm_forward";
  py::array_t<T> out = new_array<T>(op, dims(x, x.ndim()));
  py::array_t<T> mean = new_array<T>(op, lead), rstd = new_array<T>(op, lead);
  pyzen::LayerNormForwardArgs<T> a{};
  a.x = static_cast<const T*>(x.data());
  a.weight = ptr<T>(weight);
  a.bias = ptr<T>(bias);
  a.out = out.mutable_data();
  a.mean = mean.mutable_data();
  a.rstd = rstd.mutable_data();
  a.cols = x.shape(x.ndim() - 1);
  a.rows = a.cols ? x.size() / a.cols : mean.size();
  a.eps = eps;
  run_kernel(op, [&] { pyzen::layer_norm_forward(a); });
  return py::make_tuple(out, mean, rstd);
}

py::tuple layer_norm_forward(const py::array& x, const std::optional<py::array>& weight,
                             const std::optional<py::array>& bias, double eps) {
  const char* op = "layer_norm_forward";
  check_input(op, "x", x);
  const std::vector<py::ssize_t> c{x.shape(x.ndim() - 1)};
  if (weight) check_like(op, "weight", *weight, x, c);
  if (bias) check_like(op, "bias", *bias, x, c);
  if (!(eps >= 0))
    throw py::value_error(std::string(op) + ": eps must be >= 0, got " + std::to_string(eps));
  return x.itemsize() == 4 ? forward_typed<float>(x, weight, bias, eps)
                           : forward_typed<double>(x, weight, bias, eps);
}

template <typename T>
py::tuple backward_typed(const py::array& g, const py::array& x, const std::optional<py::array>& weight,
                         const py::array& mean, const py::array& rstd, bool need_bias) {
  const py::ssize_t C = x.shape(x.ndim() - 1);
  const char* op = "layer_norm_backward";
  py::array_t<T> dx = new_array<T>(op, dims(x, x.ndim()));
  std::optional<py::array_t<T>> dweight, dbias;
  if (weight) dweight = new_array<T>(op, {C});
  if (need_bias) dbias = new_array<T>(op, {C});
  pyzen::LayerNormBackwardArgs<T> a{};
  a.g = static_cast<const T*>(g.data());
  a.x = static_cast<const T*>(x.data());
  a.weight = ptr<T>(weight);
  a.mean = static_cast<const T*>(mean.data());
  a.rstd = static_cast<const T*>(rstd.data());
  a.dx = dx.mutable_data();
  a.dweight = dweight ? dweight->mutable_data() : nullptr;
  a.dbias = dbias ? dbias->mutable_data() : nullptr;
  a.cols = C;
  a.rows = mean.size();
  run_kernel(op, [&] { pyzen::layer_norm_backward(a); });
  return py::make_tuple(dx, dweight ? py::object(*dweight) : py::none(),
                        dbias ? py::object(*dbias) : py::none());
}

py::tuple layer_norm_backward(const py::array& g, const py::array& x, const std::optional<py::array>& weight,
                              const py::array& mean, const py::array& rstd, bool need_bias) {
  const char* op = "layer_norm_backward";
  check_input(op, "x", x);
  check_like(op, "g", g, x, dims(x, x.ndim()));
  const std::vector<py::ssize_t> c{x.shape(x.ndim() - 1)};
  if (weight) check_like(op, "weight", *weight, x, c);
  check_like(op, "mean", mean, x, dims(x, x.ndim() - 1));
  check_like(op, "rstd", rstd, x, dims(x, x.ndim() - 1));
  return x.itemsize() == 4 ? backward_typed<float>(g, x, weight, mean, rstd, need_bias)
                           : backward_typed<double>(g, x, weight, mean, rstd, need_bias);
}

}  // namespace

void pyzen_bind_layer_norm(py::module_& m) {
  m.def("layer_norm_forward", &layer_norm_forward, py::arg("x").noconvert(),
        py::arg("weight").noconvert().none(true), py::arg("bias").noconvert().none(true), py::arg("eps"),
        R"doc(Layer norm over the last dim of a C-contiguous float32/float64 array x (..., C).

weight and bias: (C,) arrays of x's dtype, or None. Returns (out, mean, rstd), new arrays;
mean and rstd have shape x.shape[:-1] and x's dtype. Statistics are computed shifted and
two-pass (stable for large means), with row sums accumulated in double.)doc");
  m.def("layer_norm_backward", &layer_norm_backward, py::arg("g").noconvert(), py::arg("x").noconvert(),
        py::arg("weight").noconvert().none(true), py::arg("mean").noconvert(), py::arg("rstd").noconvert(),
        py::arg("need_bias"),
        R"doc((dx, dweight or None, dbias or None) for layer_norm_forward, in one sweep over the rows.

g and x: C-contiguous, same shape and dtype; mean, rstd: from layer_norm_forward. dweight is
returned when weight is given, dbias when need_bias. Bitwise independent of the thread count.)doc");
}
