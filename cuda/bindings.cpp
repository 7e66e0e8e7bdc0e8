// pyzen._cuda: Python bindings for the CUDA backend: device queries, the device Array,
// the caching allocator's statistics, host <-> device copies and one binding per kernel
// entry point. Every binding validates its arguments (dtypes, shapes, dims, axes) before
// any CUDA call and raises ValueError / TypeError naming the op; CUDA failures raise
// RuntimeError naming the call. Importing never fails for lack of a GPU or driver: the
// runtime is linked statically, and device_count() / status() report what is missing.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "array.h"
#include "device.h"
#include "kernels.h"
#include "training.h"

namespace py = pybind11;
namespace cu = pyzen::cuda;
using cu::Array;
using cu::DType;

namespace {

[[noreturn]] void fail(const std::string& op, const std::string& msg) { throw std::invalid_argument(op + ": " + msg); }

// The bfloat16 kernels use mma.sync on bfloat16, which needs compute capability 8.0 (Ampere).
void need_bf16_device(const char* op) {
  static const std::pair<int, int> cc = cu::compute_capability(0, op);
  if (cc.first < 8)
    throw std::runtime_error(std::string(op) + ": bfloat16 (autocast) needs a GPU of compute capability 8.0 or newer, this one is " +
                             std::to_string(cc.first) + "." + std::to_string(cc.second));
}

DType parse_dtype(const std::string& name, const char* op) {
  if (name == "float32") return DType::f32;
  if (name == "float64") return DType::f64;
  if (name == "int64") return DType::i64;
  if (name == "bool") return DType::b8;
  throw py::type_error(std::string(op) + ": unsupported dtype '" + name + "' (float32, float64, int64, bool)");
}

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

void need_dtype(const Array& a, DType d, const char* op, const char* name) {
  if (a.dtype != d)
    throw py::type_error(std::string(op) + ": " + name + " must be " + cu::dtype_name(d) + ", got " +
                         cu::dtype_name(a.dtype));
}

void need_float(const Array& a, const char* op, const char* name) {
  if (a.dtype != DType::f32 && a.dtype != DType::f64)
    throw py::type_error(std::string(op) + ": " + name + " must be float32 or float64, got " + cu::dtype_name(a.dtype));
}

void need_shape(const Array& a, const std::vector<std::int64_t>& shape, const char* op, const char* name) {
  if (a.shape != shape) fail(op, std::string(name) + " has shape " + shape_str(a.shape) + ", expected " + shape_str(shape));
}

void need_contiguous(const Array& a, const char* op, const char* name) {
  if (!a.is_contiguous()) fail(op, std::string(name) + " must be contiguous");
}

// An output must not write one element from several threads (a broadcast dim).
void need_writable(const Array& out, const char* op) {
  if (out.numel() == 0) return;  // nothing is written (and size-0 shapes have stride-0 dims)
  for (int d = 0; d < out.ndim(); ++d)
    if (out.shape[d] > 1 && out.strides[d] == 0) fail(op, "the output has a broadcast (stride 0) dim " + std::to_string(d));
}

int need_axis(int axis, int ndim, const char* op) {
  if (axis < 0 || axis >= ndim)
    fail(op, "axis " + std::to_string(axis) + " out of range for " + std::to_string(ndim) + " dims");
  return axis;
}

const std::unordered_map<std::string, cu::Unary>& unary_ops() {
  static const std::unordered_map<std::string, cu::Unary> m = {
      {"negative", cu::Unary::neg}, {"absolute", cu::Unary::abs}, {"sign", cu::Unary::sign},
      {"exp", cu::Unary::exp}, {"log", cu::Unary::log}, {"sqrt", cu::Unary::sqrt},
      {"sin", cu::Unary::sin}, {"cos", cu::Unary::cos}, {"tanh", cu::Unary::tanh},
      {"sigmoid", cu::Unary::sigmoid}, {"gelu", cu::Unary::gelu}, {"gelu_tanh", cu::Unary::gelu_tanh},
      {"round_bf16", cu::Unary::round_bf16}, {"logical_not", cu::Unary::logical_not}, {"isfinite", cu::Unary::isfinite}};
  return m;
}

const std::unordered_map<std::string, cu::Binary>& binary_ops() {
  static const std::unordered_map<std::string, cu::Binary> m = {
      {"add", cu::Binary::add}, {"subtract", cu::Binary::sub}, {"multiply", cu::Binary::mul},
      {"true_divide", cu::Binary::div}, {"power", cu::Binary::pow}, {"maximum", cu::Binary::maximum},
      {"minimum", cu::Binary::minimum}, {"gelu_backward", cu::Binary::gelu_backward},
      {"gelu_tanh_backward", cu::Binary::gelu_tanh_backward}, {"equal", cu::Binary::eq},
      {"not_equal", cu::Binary::ne}, {"less", cu::Binary::lt}, {"less_equal", cu::Binary::le},
      {"greater", cu::Binary::gt}, {"greater_equal", cu::Binary::ge}, {"logical_and", cu::Binary::logical_and},
      {"logical_or", cu::Binary::logical_or}, {"logical_xor", cu::Binary::logical_xor}};
  return m;
}

template <typename Map>
auto lookup(const Map& m, const std::string& name, const char* op) {
  const auto it = m.find(name);
  if (it == m.end()) fail(op, "unknown op '" + name + "'");
  return it->second;
}

Array from_numpy(const py::array& host) {
  const py::array c = py::array::ensure(host, py::array::c_style);
  if (!c) throw py::type_error("from_numpy: expected a NumPy array");
  const char kind = c.dtype().kind();
  const auto size = c.dtype().itemsize();
  DType d;
  if (kind == 'f' && size == 4) d = DType::f32;
  else if (kind == 'f' && size == 8) d = DType::f64;
  else if (kind == 'i' && size == 8) d = DType::i64;
  else if (kind == 'b' && size == 1) d = DType::b8;
  else throw py::type_error("from_numpy: unsupported dtype " + std::string(py::str(c.dtype())) + " (float32, float64, int64, bool)");
  if (!c.dtype().attr("isnative").cast<bool>()) throw py::type_error("from_numpy: byte-swapped arrays are not supported");
  const std::vector<std::int64_t> shape(c.shape(), c.shape() + c.ndim());
  Array a = cu::empty(shape, d, "from_numpy");
  const void* src = c.data();
  py::gil_scoped_release release;
  cu::copy_to_device(a, src, "from_numpy");
  return a;
}

py::array to_numpy(const Array& a) {
  Array src = a;
  if (!a.is_contiguous()) {
    src = cu::empty(a.shape, a.dtype, "to_numpy");
    cu::copy(src, a);
  }
  const std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end());
  py::array out(py::dtype(std::string(cu::dtype_name(a.dtype))), shape);
  void* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    cu::copy_to_host(dst, src, "to_numpy");
  }
  return out;
}

void bind_kernels(py::module_& m) {
  m.def("fill", [](const Array& out, py::object value) {
    need_writable(out, "fill");
    if (out.dtype == DType::f32 || out.dtype == DType::f64) cu::fill(out, value.cast<double>(), 0);
    else if (out.dtype == DType::b8) cu::fill(out, 0.0, py::bool_(value) ? 1 : 0);
    else cu::fill(out, 0.0, value.cast<std::int64_t>());
  }, py::arg("out"), py::arg("value"), "out[...] = value (cast to out's dtype); out may be strided.");

  m.def("iota", [](const Array& out, double start, double step) {
    need_contiguous(out, "iota", "out");
    cu::iota(out, start, step);
  }, py::arg("out"), py::arg("start"), py::arg("step"), "out.flat[i] = start + i * step (out contiguous).");

  m.def("copy", [](const Array& out, const Array& src) {
    need_shape(src, out.shape, "copy", "src");
    need_writable(out, "copy");
    cu::copy(out, src);
  }, py::arg("out"), py::arg("src"), "out[...] = src, any strides, casting to out's dtype.");

  m.def("unary", [](const std::string& name, const Array& out, const Array& x) {
    const cu::Unary op = lookup(unary_ops(), name, "unary");
    need_shape(x, out.shape, name.c_str(), "x");
    need_writable(out, name.c_str());
    const bool to_bool = op == cu::Unary::logical_not || op == cu::Unary::isfinite;
    need_dtype(out, to_bool ? DType::b8 : x.dtype, name.c_str(), "out");
    const bool int_ok = op == cu::Unary::neg || op == cu::Unary::abs || op == cu::Unary::sign || to_bool;
    if (!int_ok) need_float(x, name.c_str(), "x");
    if (op == cu::Unary::round_bf16) need_dtype(x, DType::f32, name.c_str(), "x");
    cu::unary(op, out, x);
  }, py::arg("op"), py::arg("out"), py::arg("x"), "out = op(x) elementwise; x's shape is out's (broadcast by strides).");

  m.def("binary", [](const std::string& name, const Array& out, const Array& a, const Array& b) {
    const cu::Binary op = lookup(binary_ops(), name, "binary");
    const char* n = name.c_str();
    need_shape(a, out.shape, n, "a");
    need_shape(b, out.shape, n, "b");
    need_dtype(b, a.dtype, n, "b");
    need_writable(out, n);
    need_dtype(out, cu::is_comparison(op) ? DType::b8 : a.dtype, n, "out");
    if (op == cu::Binary::div || op == cu::Binary::gelu_backward || op == cu::Binary::gelu_tanh_backward)
      need_float(a, n, "a");
    if (op == cu::Binary::pow && a.dtype == DType::b8) throw py::type_error(name + ": bool operands are not supported");
    cu::binary(op, out, a, b);
  }, py::arg("op"), py::arg("out"), py::arg("a"), py::arg("b"),
     "out = op(a, b) elementwise; a and b have out's shape (broadcast by strides) and one dtype.");

  m.def("where", [](const Array& out, const Array& cond, const Array& a, const Array& b) {
    need_shape(cond, out.shape, "where", "cond");
    need_shape(a, out.shape, "where", "a");
    need_shape(b, out.shape, "where", "b");
    need_dtype(cond, DType::b8, "where", "cond");
    need_dtype(a, out.dtype, "where", "a");
    need_dtype(b, out.dtype, "where", "b");
    need_writable(out, "where");
    cu::where(out, cond, a, b);
  }, py::arg("out"), py::arg("cond"), py::arg("a"), py::arg("b"), "out = cond ? a : b elementwise.");

  m.def("reduce", [](const std::string& name, const Array& out, const Array& x, int nreduce) {
    static const std::unordered_map<std::string, cu::Reduce> ops = {
        {"sum", cu::Reduce::sum}, {"prod", cu::Reduce::prod}, {"max", cu::Reduce::max},
        {"min", cu::Reduce::min}, {"argmax", cu::Reduce::argmax}, {"argmin", cu::Reduce::argmin}};
    const cu::Reduce op = lookup(ops, name, "reduce");
    const char* n = name.c_str();
    if (nreduce < 0 || nreduce > x.ndim()) fail(n, "cannot reduce " + std::to_string(nreduce) + " dims of " + std::to_string(x.ndim()));
    need_shape(out, std::vector<std::int64_t>(x.shape.begin(), x.shape.end() - nreduce), n, "out");
    need_contiguous(out, n, "out");
    const bool arg = op == cu::Reduce::argmax || op == cu::Reduce::argmin;
    need_dtype(out, arg ? DType::i64 : x.dtype, n, "out");
    if ((op == cu::Reduce::sum || op == cu::Reduce::prod) && x.dtype == DType::b8)
      throw py::type_error(name + ": cast bool to int64 first");
    cu::reduce(op, out, x, nreduce);
  }, py::arg("op"), py::arg("out"), py::arg("x"), py::arg("nreduce"),
     "Reduce the last nreduce dims of x into the contiguous out (deterministic order).");

  m.def("cumulative", [](const std::string& name, const Array& out, const Array& x) {
    if (name != "cumsum" && name != "cumprod") fail("cumulative", "unknown op '" + name + "'");
    const char* n = name.c_str();
    if (x.ndim() < 1) fail(n, "x must have at least 1 dim");
    need_shape(out, x.shape, n, "out");
    need_contiguous(out, n, "out");
    need_dtype(out, x.dtype, n, "out");
    if (x.dtype == DType::b8) throw py::type_error(name + ": cast bool to int64 first");
    cu::cumulative(name == "cumprod", out, x);
  }, py::arg("op"), py::arg("out"), py::arg("x"), "Cumulative sum or product along the last dim.");

  m.def("softmax", [](const Array& out, const Array& x, bool log) {
    const char* n = log ? "log_softmax" : "softmax";
    need_float(x, n, "x");
    if (x.ndim() < 1) fail(n, "x must have at least 1 dim");
    need_contiguous(x, n, "x");
    need_shape(out, x.shape, n, "out");
    need_contiguous(out, n, "out");
    need_dtype(out, x.dtype, n, "out");
    cu::softmax(out, x, log);
  }, py::arg("out"), py::arg("x"), py::arg("log"), "softmax or log_softmax over the last dim (contiguous arrays).");

  m.def("softmax_backward", [](const Array& dx, const Array& g, const Array& y, bool log) {
    const char* n = log ? "log_softmax_backward" : "softmax_backward";
    need_float(y, n, "y");
    if (y.ndim() < 1) fail(n, "y must have at least 1 dim");
    for (const Array* a : {&dx, &g, &y}) {
      need_shape(*a, y.shape, n, "operand");
      need_contiguous(*a, n, "operand");
      need_dtype(*a, y.dtype, n, "operand");
    }
    cu::softmax_backward(dx, g, y, log);
  }, py::arg("dx"), py::arg("g"), py::arg("y"), py::arg("log"),
     "Gradient of softmax (or log_softmax) over the last dim from its output y (contiguous arrays).");

  m.def("take", [](const Array& out, const Array& x, const Array& index, int axis) {
    need_axis(axis, x.ndim(), "take");
    need_dtype(index, DType::i64, "take", "index");
    if (index.ndim() != 1) fail("take", "index must be 1-D");
    need_contiguous(index, "take", "index");
    std::vector<std::int64_t> shape = x.shape;
    shape[axis] = index.shape[0];
    need_shape(out, shape, "take", "out");
    need_contiguous(out, "take", "out");
    need_dtype(out, x.dtype, "take", "out");
    cu::take(out, x, index, axis);
  }, py::arg("out"), py::arg("x"), py::arg("index"), py::arg("axis"), "out = x.take(index, axis) for a 1-D int64 index.");

  m.def("gather", [](const Array& out, const Array& x, const Array& index, int axis) {
    need_axis(axis, x.ndim(), "gather");
    need_dtype(index, DType::i64, "gather", "index");
    if (index.ndim() != x.ndim()) fail("gather", "index must have x's number of dims");
    for (int d = 0; d < x.ndim(); ++d)
      if (d != axis && index.shape[d] > x.shape[d]) fail("gather", "index shape " + shape_str(index.shape) + " exceeds x shape " + shape_str(x.shape));
    need_shape(out, index.shape, "gather", "out");
    need_contiguous(out, "gather", "out");
    need_dtype(out, x.dtype, "gather", "out");
    cu::gather(out, x, index, axis);
  }, py::arg("out"), py::arg("x"), py::arg("index"), py::arg("axis"), "out = take_along_axis(x, index, axis).");

  m.def("scatter", [](const Array& out, const Array& index, const Array& values, int axis, bool accumulate) {
    need_axis(axis, out.ndim(), "scatter");
    need_dtype(index, DType::i64, "scatter", "index");
    need_dtype(values, out.dtype, "scatter", "values");
    need_shape(values, index.shape, "scatter", "values");
    if (index.ndim() != out.ndim()) fail("scatter", "index must have out's number of dims");
    for (int d = 0; d < out.ndim(); ++d)
      if (d != axis && index.shape[d] > out.shape[d]) fail("scatter", "index shape " + shape_str(index.shape) + " exceeds out shape " + shape_str(out.shape));
    need_writable(out, "scatter");
    if (accumulate && out.dtype == DType::b8) throw py::type_error("scatter: cannot accumulate into bool");
    cu::scatter(out, index, values, axis, accumulate);
  }, py::arg("out"), py::arg("index"), py::arg("values"), py::arg("axis"), py::arg("accumulate"),
     "out[.., index[i], ..] = (or +=) values[i] along axis; atomic adds (not bitwise deterministic for floats).");

  m.def("random_uniform", [](const Array& out, std::uint64_t seed, std::uint64_t offset) {
    need_float(out, "random_uniform", "out");
    need_contiguous(out, "random_uniform", "out");
    cu::random_uniform(out, seed, offset);
  }, py::arg("out"), py::arg("seed"), py::arg("offset"), "Uniform [0, 1) samples from Philox4x32-10.");

  m.def("random_normal", [](const Array& out, std::uint64_t seed, std::uint64_t offset) {
    need_float(out, "random_normal", "out");
    need_contiguous(out, "random_normal", "out");
    cu::random_normal(out, seed, offset);
  }, py::arg("out"), py::arg("seed"), py::arg("offset"), "Standard normal samples (Philox4x32-10, Box-Muller).");

  m.def("random_int", [](const Array& out, std::int64_t low, std::int64_t high, std::uint64_t seed, std::uint64_t offset) {
    need_dtype(out, DType::i64, "random_int", "out");
    need_contiguous(out, "random_int", "out");
    if (high <= low) fail("random_int", "expected low < high, got " + std::to_string(low) + " and " + std::to_string(high));
    cu::random_int(out, low, high, seed, offset);
  }, py::arg("out"), py::arg("low"), py::arg("high"), py::arg("seed"), py::arg("offset"), "Integers in [low, high).");

  m.def("argsort", [](const Array& out, const Array& x) {
    const char* n = "argsort";
    if (x.ndim() != 2) fail(n, "expected x (rows, n), got shape " + shape_str(x.shape));
    need_contiguous(x, n, "x");
    need_writable(out, n);
    need_dtype(out, DType::i64, n, "out");
    need_contiguous(out, n, "out");
    need_shape(out, x.shape, n, "out");
    cu::argsort(out, x);
  }, py::arg("out"), py::arg("x"),
     "out (rows, n) int64 = the stable ascending order of each row of x (rows, n), contiguous; NaN sorts last, "
     "-0.0 as 0.0 (NumPy's kind='stable').");

  m.def("matmul", [](const Array& out, const Array& a, const Array& b, bool bf16) {
    if (a.ndim() < 2 || b.ndim() != a.ndim()) fail("matmul", "expected a (..., M, K) and b (..., K, N) with equal ranks");
    const int nd = a.ndim();
    if (a.dtype != DType::f32 && a.dtype != DType::f64 && a.dtype != DType::i64)
      throw py::type_error(std::string("matmul: unsupported dtype ") + cu::dtype_name(a.dtype));
    need_dtype(b, a.dtype, "matmul", "b");
    for (int d = 0; d < nd - 2; ++d)
      if (a.shape[d] != b.shape[d]) fail("matmul", "batch dims differ: " + shape_str(a.shape) + " and " + shape_str(b.shape));
    if (a.shape[nd - 1] != b.shape[nd - 2]) fail("matmul", "shapes " + shape_str(a.shape) + " and " + shape_str(b.shape) + " cannot be multiplied");
    for (std::int64_t s : {a.shape[nd - 2], a.shape[nd - 1], b.shape[nd - 1]})
      if (s >= (std::int64_t(1) << 31)) fail("matmul", "M, N and K must be below 2^31");
    std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end() - 1);
    shape.push_back(b.shape[nd - 1]);
    need_shape(out, shape, "matmul", "out");
    need_contiguous(out, "matmul", "out");
    need_dtype(out, a.dtype, "matmul", "out");
    if (bf16 && a.dtype != DType::f32) throw py::type_error(std::string("matmul: bf16 needs float32 operands, got ") + cu::dtype_name(a.dtype));
    if (bf16 && b.shape[nd - 1] > std::int64_t(65535) * 128) fail("matmul", "bf16: N must be at most 8388480");
    if (bf16) need_bf16_device("matmul");
    cu::matmul(out, a, b, bf16);
  }, py::arg("out"), py::arg("a"), py::arg("b"), py::arg("bf16") = false,
     "out (..., M, N), contiguous, = a @ b (any strides, equal batch shapes). bf16: float32 operands rounded to "
     "bfloat16, products on tensor cores with float32 accumulation (sm_80+).");
}

// Float arrays of one dtype, contiguous, for the training kernels.
void need_float_contiguous(const Array& a, DType dtype, const char* op, const char* name) {
  need_dtype(a, dtype, op, name);
  need_contiguous(a, op, name);
}

const Array* opt(const std::optional<Array>& a) { return a ? &*a : nullptr; }

// q (BH, Tq, D), k and v (BH, Tk, D): float32, contiguous, D 32, 64 or 128 (the flash kernels' cases).
void need_attention_qkv(const Array& q, const Array& k, const Array& v, const char* op) {
  for (const Array* a : {&q, &k, &v}) {
    need_float_contiguous(*a, DType::f32, op, "q, k and v");
    if (a->ndim() != 3) fail(op, "q, k and v must be (BH, T, D), got shape " + shape_str(a->shape));
  }
  if (q.shape[2] != 32 && q.shape[2] != 64 && q.shape[2] != 128)
    fail(op, "head dim must be 32, 64 or 128, got " + std::to_string(q.shape[2]));
  need_shape(k, {q.shape[0], k.shape[1], q.shape[2]}, op, "k");
  need_shape(v, k.shape, op, "v");
}

void bind_training(py::module_& m) {
  m.def("layer_norm_forward", [](const Array& out, const Array& mean, const Array& rstd, const Array& x,
                                 const std::optional<Array>& weight, const std::optional<Array>& bias, double eps) {
    const char* n = "layer_norm";
    need_float(x, n, "x");
    if (x.ndim() < 1) fail(n, "x must have at least 1 dim");
    const std::vector<std::int64_t> rows(x.shape.begin(), x.shape.end() - 1), cols{x.shape.back()};
    need_float_contiguous(x, x.dtype, n, "x");
    need_float_contiguous(out, x.dtype, n, "out");
    need_shape(out, x.shape, n, "out");
    for (const auto* a : {&mean, &rstd}) {
      need_float_contiguous(*a, x.dtype, n, "mean and rstd");
      need_shape(*a, rows, n, "mean and rstd");
    }
    for (const auto* a : {opt(weight), opt(bias)})
      if (a) {
        need_float_contiguous(*a, x.dtype, n, "weight and bias");
        need_shape(*a, cols, n, "weight and bias");
      }
    if (!(eps >= 0)) fail(n, "eps must be >= 0, got " + std::to_string(eps));
    cu::layer_norm_forward(out, mean, rstd, x, opt(weight), opt(bias), eps);
  }, py::arg("out"), py::arg("mean"), py::arg("rstd"), py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"),
     "Layer norm over the last dim of x (contiguous, float): out, and per-row mean and rstd = 1/sqrt(var + eps); "
     "weight and bias (C,) or None.");

  m.def("layer_norm_backward", [](const Array& dx, const std::optional<Array>& dweight, const std::optional<Array>& dbias,
                                  const Array& g, const Array& x, const std::optional<Array>& weight, const Array& mean,
                                  const Array& rstd) {
    const char* n = "layer_norm_backward";
    need_float(x, n, "x");
    if (x.ndim() < 1) fail(n, "x must have at least 1 dim");
    const std::vector<std::int64_t> rows(x.shape.begin(), x.shape.end() - 1), cols{x.shape.back()};
    for (const auto* a : {&dx, &g, &x}) {
      need_float_contiguous(*a, x.dtype, n, "dx, g and x");
      need_shape(*a, x.shape, n, "dx, g and x");
    }
    for (const auto* a : {&mean, &rstd}) {
      need_float_contiguous(*a, x.dtype, n, "mean and rstd");
      need_shape(*a, rows, n, "mean and rstd");
    }
    for (const auto* a : {opt(dweight), opt(dbias), opt(weight)})
      if (a) {
        need_float_contiguous(*a, x.dtype, n, "weight and its gradients");
        need_shape(*a, cols, n, "weight and its gradients");
      }
    cu::layer_norm_backward(dx, opt(dweight), opt(dbias), g, x, opt(weight), mean, rstd);
  }, py::arg("dx"), py::arg("dweight"), py::arg("dbias"), py::arg("g"), py::arg("x"), py::arg("weight"), py::arg("mean"),
     py::arg("rstd"),
     "Gradients of layer_norm_forward: dx, and dweight / dbias (C,) where given (deterministic order).");

  m.def("adamw_step", [](const std::vector<Array>& params, const std::vector<Array>& grads, const std::vector<Array>& exp_avgs,
                         const std::vector<Array>& exp_avg_sqs, const std::optional<std::vector<Array>>& max_exp_avg_sqs,
                         const std::vector<double>& steps, double lr, double beta1, double beta2, double eps,
                         double weight_decay, bool decoupled, bool maximize) {
    const char* n = "adamw_step";
    const std::size_t k = params.size();
    if (grads.size() != k || exp_avgs.size() != k || exp_avg_sqs.size() != k || steps.size() != k ||
        (max_exp_avg_sqs && max_exp_avg_sqs->size() != k))
      fail(n, "expected " + std::to_string(k) + " grads, states and steps, one per param");
    const std::vector<Array> none;
    const std::vector<Array>& vmax = max_exp_avg_sqs ? *max_exp_avg_sqs : none;
    for (std::size_t i = 0; i < k; ++i) {
      const Array& p = params[i];
      need_float(p, n, "params");
      if (p.dtype != params[0].dtype) fail(n, "params must share one dtype (call once per dtype)");
      for (const Array* a : {&p, &grads[i], &exp_avgs[i], &exp_avg_sqs[i], vmax.empty() ? &p : &vmax[i]}) {
        need_float_contiguous(*a, p.dtype, n, "params, grads and states");
        need_shape(*a, p.shape, n, "params, grads and states");
      }
      if (!(steps[i] >= 1)) fail(n, "steps must be >= 1, got " + std::to_string(steps[i]));
    }
    cu::adamw_step(params, grads, exp_avgs, exp_avg_sqs, vmax, steps,
                   {lr, beta1, beta2, eps, weight_decay, decoupled, maximize});
  }, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"),
     py::arg("steps"), py::kw_only(), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
     py::arg("weight_decay"), py::arg("decoupled"), py::arg("maximize"),
     "One Adam (decoupled=False) or AdamW step over every param in one launch, in place, with the CPU kernel's "
     "arithmetic; steps[i] is param i's step count after this step; max_exp_avg_sqs given for amsgrad.");

  m.def("cross_entropy_forward", [](const Array& losses, const Array& lse, const Array& logits, const Array& target,
                                    std::int64_t ignore_index, double label_smoothing) {
    const char* n = "cross_entropy";
    need_float(logits, n, "logits");
    if (logits.ndim() != 2) fail(n, "logits must be (N, C), got shape " + shape_str(logits.shape));
    need_float_contiguous(logits, logits.dtype, n, "logits");
    need_float_contiguous(target, DType::i64, n, "target");
    for (const auto* a : {&target, &losses, &lse}) need_shape(*a, {logits.shape[0]}, n, "target, losses and lse");
    for (const auto* a : {&losses, &lse}) need_float_contiguous(*a, logits.dtype, n, "losses and lse");
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
      fail(n, "label_smoothing must be in [0, 1], got " + std::to_string(label_smoothing));
    cu::cross_entropy_forward(losses, lse, logits, target, ignore_index, label_smoothing);
  }, py::arg("losses"), py::arg("lse"), py::arg("logits"), py::arg("target"), py::arg("ignore_index"),
     py::arg("label_smoothing"),
     "Per-row softmax cross-entropy of (N, C) logits (0 where target == ignore_index, nan for a target outside "
     "[0, C)) and each row's logsumexp; one kernel.");

  m.def("cross_entropy_backward", [](const Array& dlogits, const Array& g, const Array& logits, const Array& target,
                                     const Array& lse, std::int64_t ignore_index, double label_smoothing) {
    const char* n = "cross_entropy_backward";
    need_float(logits, n, "logits");
    if (logits.ndim() != 2) fail(n, "logits must be (N, C), got shape " + shape_str(logits.shape));
    for (const auto* a : {&dlogits, &logits}) {
      need_float_contiguous(*a, logits.dtype, n, "dlogits and logits");
      need_shape(*a, logits.shape, n, "dlogits and logits");
    }
    need_float_contiguous(target, DType::i64, n, "target");
    for (const auto* a : {&g, &lse, &target}) need_shape(*a, {logits.shape[0]}, n, "g, lse and target");
    for (const auto* a : {&g, &lse}) need_float_contiguous(*a, logits.dtype, n, "g and lse");
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
      fail(n, "label_smoothing must be in [0, 1], got " + std::to_string(label_smoothing));
    cu::cross_entropy_backward(dlogits, g, logits, target, lse, ignore_index, label_smoothing);
  }, py::arg("dlogits"), py::arg("g"), py::arg("logits"), py::arg("target"), py::arg("lse"), py::arg("ignore_index"),
     py::arg("label_smoothing"),
     "d(sum_i g_i loss_i)/d(logits) for cross_entropy_forward, from its saved lse; one kernel.");

  m.def("foreach_sum_squares", [](const Array& out, const std::vector<Array>& xs) {
    const char* n = "foreach_sum_squares";
    need_writable(out, n);
    need_dtype(out, DType::f64, n, "out");
    need_contiguous(out, n, "out");
    need_shape(out, {static_cast<std::int64_t>(xs.size())}, n, "out");
    for (const Array& x : xs) {
      need_float_contiguous(x, xs[0].dtype, n, "tensors");
      need_float(x, n, "tensors");
    }
    cu::foreach_sum_squares(out, xs);
  }, py::arg("out"), py::arg("xs"),
     "out (len(xs),) float64 = each tensor's sum of squares (xs: contiguous, one float dtype); a few launches "
     "for all of them, deterministic.");

  m.def("foreach_mul_", [](const std::vector<Array>& xs, const Array& scale) {
    const char* n = "foreach_mul_";
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const Array& x = xs[i];
      need_float_contiguous(x, xs[0].dtype, n, "tensors");
      need_float(x, n, "tensors");
      need_writable(x, n);
      for (std::size_t j = 0; j < i; ++j)  // an element in two tensors would be scaled twice
        if (xs[j].buffer == x.buffer && xs[j].offset < x.offset + x.numel() && x.offset < xs[j].offset + xs[j].numel())
          fail(n, "tensors " + std::to_string(j) + " and " + std::to_string(i) + " share memory");
    }
    if (!xs.empty()) need_dtype(scale, xs[0].dtype, n, "scale");
    if (scale.numel() != 1) fail(n, "scale must hold one element, got shape " + shape_str(scale.shape));
    cu::foreach_mul_(xs, scale);
  }, py::arg("xs"), py::arg("scale"),
     "Every tensor of xs (contiguous, one float dtype, no shared memory) times the one element of scale, in place.");

  m.def("embedding_backward", [](const Array& out, const Array& g, const Array& index) {
    const char* n = "embedding_backward";
    need_writable(out, n);
    need_float(out, n, "out");
    need_contiguous(out, n, "out");
    need_float_contiguous(g, out.dtype, n, "g");
    need_dtype(index, DType::i64, n, "index");
    need_contiguous(index, n, "index");
    if (out.ndim() != 2 || g.ndim() != 2 || index.ndim() != 1)
      fail(n, "expected out (rows, cols), g (n, cols) and index (n,), got shapes " + shape_str(out.shape) + ", " +
                  shape_str(g.shape) + " and " + shape_str(index.shape));
    need_shape(g, {index.shape[0], out.shape[1]}, n, "g");
    if (index.shape[0] >= (std::int64_t(1) << 32) || out.shape[0] >= (std::int64_t(1) << 31) ||
        out.shape[1] > std::int64_t(65535) * 256)
      fail(n, "sizes past the kernel's limits (n < 2^32 indices, < 2^31 rows, <= 16776960 columns): " +
                  shape_str(g.shape) + " into " + shape_str(out.shape));
    cu::embedding_backward(out, g, index);
  }, py::arg("out"), py::arg("g"), py::arg("index"),
     "out[r] = sum of g[i] over i with index[i] == r (negative indices wrap, out-of-range ones are dropped), "
     "added in increasing i: deterministic, no atomics.");

  m.def("attention_forward", [](const Array& out, const Array& lse, const Array& q, const Array& k, const Array& v,
                                bool causal, double scale, bool bf16) {
    const char* n = "attention";
    need_attention_qkv(q, k, v, n);
    need_float_contiguous(out, DType::f32, n, "out");
    need_shape(out, q.shape, n, "out");
    need_float_contiguous(lse, DType::f32, n, "lse");
    need_shape(lse, {q.shape[0], q.shape[1]}, n, "lse");
    if (bf16) need_bf16_device(n);
    cu::attention_forward(out, lse, q, k, v, causal, scale, bf16);
  }, py::arg("out"), py::arg("lse"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("causal"), py::arg("scale"),
     py::arg("bf16") = false,
     "Flash attention, float32 arrays: out = softmax(q k^T * scale [causal: key j <= query i]) v for q (BH, Tq, D), "
     "k, v (BH, Tk, D), D 32, 64 or 128, all contiguous; lse (BH, Tq) saved for the backward. bf16: q, k, v rounded "
     "to bfloat16, products on tensor cores with float32 accumulation (sm_80+).");

  m.def("attention_backward", [](const Array& dq, const Array& dk, const Array& dv, const Array& g, const Array& q,
                                 const Array& k, const Array& v, const Array& out, const Array& lse, bool causal,
                                 double scale, bool bf16) {
    const char* n = "attention_backward";
    need_attention_qkv(q, k, v, n);
    for (const auto* a : {&dq, &g, &out}) {
      need_float_contiguous(*a, DType::f32, n, "dq, g and out");
      need_shape(*a, q.shape, n, "dq, g and out");
    }
    for (const auto* a : {&dk, &dv}) {
      need_float_contiguous(*a, DType::f32, n, "dk and dv");
      need_shape(*a, k.shape, n, "dk and dv");
    }
    need_float_contiguous(lse, DType::f32, n, "lse");
    need_shape(lse, {q.shape[0], q.shape[1]}, n, "lse");
    if (bf16) need_bf16_device(n);
    cu::attention_backward(dq, dk, dv, g, q, k, v, out, lse, causal, scale, bf16);
  }, py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("g"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"),
     py::arg("lse"), py::arg("causal"), py::arg("scale"), py::arg("bf16") = false,
     "Gradients of attention_forward from its out and lse (deterministic: no atomics); bf16 as for the forward, "
     "with g rounded too.");
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pyzen CUDA kernels, device arrays and device queries.";

  m.def("device_count", &cu::device_count,
        "Number of usable CUDA devices; 0 when there is no driver or device (never raises).");
  m.def("status", &cu::status,
        "'ok' when a CUDA device is usable, otherwise the reason (no driver, no device, ...).");
  m.def("runtime_version", &cu::runtime_version,
        "Version of the CUDA runtime built into this module, e.g. '13.0'.");
  m.def("device_name", [](int i) { return cu::device_name(i, "device_name"); }, py::arg("i"),
        "Name of CUDA device i (ValueError for a bad index, RuntimeError on CUDA failure).");
  m.def("compute_capability", [](int i) { return cu::compute_capability(i, "compute_capability"); },
        py::arg("i"),
        "(major, minor) compute capability of CUDA device i (ValueError for a bad index, "
        "RuntimeError on CUDA failure).");

  py::class_<Array>(m, "Array", "A strided view of a refcounted device buffer (strides in elements).")
      .def_property_readonly("shape", [](const Array& a) { return py::tuple(py::cast(a.shape)); })
      .def_property_readonly("strides", [](const Array& a) { return py::tuple(py::cast(a.strides)); })
      .def_property_readonly("offset", [](const Array& a) { return a.offset; })
      .def_property_readonly("dtype", [](const Array& a) { return std::string(cu::dtype_name(a.dtype)); })
      .def_property_readonly("ndim", &Array::ndim)
      .def_property_readonly("size", &Array::numel)
      .def_property_readonly("buffer_id", [](const Array& a) { return reinterpret_cast<std::uintptr_t>(a.buffer.get()); },
                             "Identifies the buffer: views of one buffer share it.")
      .def_property_readonly("data_ptr", [](const Array& a) { return reinterpret_cast<std::uintptr_t>(a.data()); },
                             "Device address of element [0, ..., 0] (for handing to other CUDA libraries).")
      .def_property_readonly("buffer_elements",
                             [](const Array& a) { return static_cast<std::int64_t>(a.buffer->bytes / cu::itemsize(a.dtype)); })
      .def("is_contiguous", &Array::is_contiguous)
      .def("view", [](const Array& a, const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& strides,
                      std::int64_t offset) { return cu::view(a, shape, strides, offset, "view"); },
           py::arg("shape"), py::arg("strides"), py::arg("offset"),
           "A view of the same buffer; ValueError if it reaches outside the buffer.");

  m.def("empty", [](const std::vector<std::int64_t>& shape, const std::string& dtype) {
    return cu::empty(shape, parse_dtype(dtype, "empty"), "empty");
  }, py::arg("shape"), py::arg("dtype"), "A new uninitialised C-contiguous device array.");
  m.def("from_numpy", &from_numpy, py::arg("array"), "A new device array holding a copy of a NumPy array (any strides).");
  m.def("to_numpy", &to_numpy, py::arg("array"), "A new C-contiguous NumPy array holding a copy of a device array.");
  m.def("memory_allocated", &cu::memory_allocated, "Bytes held by live device arrays (size-class rounded).");
  m.def("memory_reserved", &cu::memory_reserved, "Bytes obtained from cudaMalloc: live plus cached.");
  m.def("empty_cache", &cu::empty_cache, "Return every cached (unused) block to the driver.");
  m.def("synchronize", []() {
    py::gil_scoped_release release;
    cu::synchronize();
  }, "Wait for all queued kernels; raises RuntimeError for an error a kernel hit.");

  bind_kernels(m);
  bind_training(m);
}
