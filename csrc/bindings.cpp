// pyzen._C: Python bindings for the CPU kernels. Thin: validate, raise a Python exception
// naming the op and the bad values, release the GIL, call the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "bind_util.h"
#include "buffer_cache.h"
#include "cpu_features.h"
#include "kernels/gelu.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "kernels/round_bf16.h"
#include "parallel.h"

namespace py = pybind11;
using pyzen::bind::check_aligned;
using pyzen::bind::new_array;
using pyzen::bind::run_kernel;
using pyzen::bind::shape_str;
using pyzen::bind::strides_str;

void pyzen_bind_layer_norm(py::module_& m);  // bind_layer_norm.cpp
void pyzen_bind_cross_entropy(py::module_& m);  // bind_cross_entropy.cpp
void pyzen_bind_adamw(py::module_& m);  // bind_adamw.cpp
void pyzen_bind_attention(py::module_& m);  // bind_attention.cpp

namespace {

// Element strides of a 3-D array; strides of length-0/1 dimensions are never used and
// are set to 0 (NumPy does not promise anything about them).
void element_strides(const py::array& x, const char* name, const char* op, int64_t out[3]) {
  const py::ssize_t item = x.itemsize();
  for (int d = 0; d < 3; ++d) {
    const py::ssize_t s = x.strides(d);
    if (x.shape(d) > 1 && s % item != 0)
      throw py::value_error(std::string(op) + ": strides of " + std::string(name) + " " + strides_str(x) +
                            " are not multiples of its item size (" + std::to_string(item) +
                            " bytes)");
    out[d] = x.shape(d) > 1 ? s / item : 0;
  }
  check_aligned(x, op, name);
}

// A bias is None or a C-contiguous 1-D array of C's dtype and n values.
template <typename T>
const T* bias_pointer(const py::object& bias, int64_t n, const char* op) {
  if (bias.is_none()) return nullptr;
  if (!py::isinstance<py::array>(bias))
    throw py::type_error(std::string(op) + ": bias must be an array or None, got " +
                         std::string(py::str(py::type::of(bias).attr("__name__"))));
  const py::array arr = py::reinterpret_borrow<py::array>(bias);
  if (!arr.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string(op) + ": bias must have the operands' dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " + std::string(py::str(arr.dtype())));
  if (arr.ndim() != 1 || arr.shape(0) != n)
    throw py::value_error(std::string(op) + ": bias must have shape (" + std::to_string(n) + ",), got " +
                          shape_str(arr));
  if (!(arr.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": bias must be C-contiguous");
  check_aligned(arr, op, "bias");
  return static_cast<const T*>(arr.data());
}

// C = a @ b (+ bias) by `kernel` on validated operands, into a new (B, M, N) array.
template <typename T, typename Kernel>
py::array run_matmul(const char* op, const py::array& a, const py::array& b, const py::object& bias,
                     Kernel kernel) {
  pyzen::MatmulArgs<T> args{};
  args.batch = a.shape(0);
  args.m = a.shape(1);
  args.k = a.shape(2);
  args.n = b.shape(2);
  element_strides(a, "a", op, args.a_stride);
  element_strides(b, "b", op, args.b_stride);
  args.a = static_cast<const T*>(a.data());
  args.b = static_cast<const T*>(b.data());
  args.bias = bias_pointer<T>(bias, args.n, op);
  py::array_t<T> c = new_array<T>(op, {args.batch, args.m, args.n});
  args.c = c.mutable_data();
  run_kernel(op, [&] { kernel(args); });
  return c;
}

// Shapes (B, M, K) and (B, K, N) with matching K and B, or a ValueError naming `op`.
void check_matmul_shapes(const py::array& a, const py::array& b, const char* op) {
  const std::string o(op);
  if (a.ndim() != 3 || b.ndim() != 3)
    throw py::value_error(o + ": expected 3-D arrays, got shapes " + shape_str(a) + " and " + shape_str(b));
  if (a.shape(2) != b.shape(1))
    throw py::value_error(o + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                          " cannot be multiplied (" + std::to_string(a.shape(2)) +
                          " != " + std::to_string(b.shape(1)) + ")");
  if (a.shape(0) != b.shape(0))
    throw py::value_error(o + ": batch sizes of shapes " + shape_str(a) + " and " +
                          shape_str(b) + " differ (" + std::to_string(a.shape(0)) +
                          " != " + std::to_string(b.shape(0)) + ")");
}

py::array matmul(const py::array& a, const py::array& b, const py::object& bias) {
  const auto f32 = py::dtype::of<float>(), f64 = py::dtype::of<double>();
  const bool is_f32 = a.dtype().equal(f32) && b.dtype().equal(f32);
  const bool is_f64 = a.dtype().equal(f64) && b.dtype().equal(f64);
  check_matmul_shapes(a, b, "matmul");
  if (!is_f32 && !is_f64)
    throw py::type_error("matmul: expected float32 or float64 arrays of the same dtype, got " +
                         std::string(py::str(a.dtype())) + " and " +
                         std::string(py::str(b.dtype())));
  const auto kernel = [](const auto& args) { pyzen::matmul(args); };
  return is_f32 ? run_matmul<float>("matmul", a, b, bias, kernel) : run_matmul<double>("matmul", a, b, bias, kernel);
}

py::array matmul_bf16(const py::array& a, const py::array& b, const py::object& bias) {
  check_matmul_shapes(a, b, "matmul_bf16");
  const auto f32 = py::dtype::of<float>();
  if (!a.dtype().equal(f32) || !b.dtype().equal(f32))
    throw py::type_error("matmul_bf16: expected float32 arrays, got " + std::string(py::str(a.dtype())) +
                         " and " + std::string(py::str(b.dtype())));
  const pyzen::Bf16Path path = pyzen::active_bf16_path();
  if (path == pyzen::Bf16Path::float32)
    throw py::value_error("matmul_bf16: no bfloat16 kernel on the active path (bf16 path '" +
                          std::string(pyzen::bf16_path_name(path)) + "', ISA '" +
                          pyzen::isa_name(pyzen::active_isa()) +
                          "'): round the operands and call matmul");
  return run_matmul<float>("matmul_bf16", a, b, bias, [](const auto& args) { pyzen::matmul_bf16(args); });
}

bool gelu_mode(const std::string& approximate, const char* op) {
  if (approximate != "none" && approximate != "tanh")
    throw py::value_error(std::string(op) + ": approximate must be 'none' or 'tanh', got '" +
                          approximate + "'");
  return approximate == "tanh";
}

// A C-contiguous float32/float64 array, or a ValueError/TypeError naming the op.
void check_float_contiguous(const py::array& x, const char* op, const char* name) {
  const auto f32 = py::dtype::of<float>(), f64 = py::dtype::of<double>();
  if (!x.dtype().equal(f32) && !x.dtype().equal(f64))
    throw py::type_error(std::string(op) + ": expected " + name + " to be float32 or float64, got " +
                         std::string(py::str(x.dtype())));
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": expected " + name + " to be C-contiguous");
  check_aligned(x, op, name);
}

std::vector<py::ssize_t> shape_of(const py::array& x) { return {x.shape(), x.shape() + x.ndim()}; }

py::array round_bf16(const py::array& x) {
  if (!x.dtype().equal(py::dtype::of<float>()))
    throw py::type_error("round_bf16: expected a float32 array, got " + std::string(py::str(x.dtype())));
  if (!(x.flags() & py::array::c_style))
    throw py::value_error("round_bf16: expected a C-contiguous array");
  check_aligned(x, "round_bf16", "x");
  py::array_t<float> out = new_array<float>("round_bf16", shape_of(x));
  run_kernel("round_bf16", [&] { pyzen::round_bf16(static_cast<const float*>(x.data()), out.mutable_data(), x.size()); });
  return out;
}

template <typename T>
py::array gelu_forward_typed(const py::array& x, bool tanh_approx) {
  py::array_t<T> out = new_array<T>("gelu_forward", shape_of(x));
  run_kernel("gelu_forward", [&] {
    pyzen::gelu_forward(static_cast<const T*>(x.data()), out.mutable_data(), x.size(), tanh_approx);
  });
  return out;
}

py::array gelu_forward(const py::array& x, const std::string& approximate) {
  const bool tanh_approx = gelu_mode(approximate, "gelu_forward");
  check_float_contiguous(x, "gelu_forward", "x");
  return x.itemsize() == 4 ? gelu_forward_typed<float>(x, tanh_approx) : gelu_forward_typed<double>(x, tanh_approx);
}

template <typename T>
py::array gelu_backward_typed(const py::array& grad, const py::array& x, bool tanh_approx) {
  py::array_t<T> dx = new_array<T>("gelu_backward", shape_of(x));
  run_kernel("gelu_backward", [&] {
    pyzen::gelu_backward(static_cast<const T*>(grad.data()), static_cast<const T*>(x.data()), dx.mutable_data(),
                         x.size(), tanh_approx);
  });
  return dx;
}

py::array gelu_backward(const py::array& grad, const py::array& x, const std::string& approximate) {
  const bool tanh_approx = gelu_mode(approximate, "gelu_backward");
  check_float_contiguous(grad, "gelu_backward", "grad");
  check_float_contiguous(x, "gelu_backward", "x");
  if (!grad.dtype().equal(x.dtype()))
    throw py::type_error("gelu_backward: grad and x must have the same dtype, got " +
                         std::string(py::str(grad.dtype())) + " and " + std::string(py::str(x.dtype())));
  if (shape_str(grad) != shape_str(x))
    throw py::value_error("gelu_backward: grad shape " + shape_str(grad) + " differs from x shape " + shape_str(x));
  return x.itemsize() == 4 ? gelu_backward_typed<float>(grad, x, tanh_approx)
                           : gelu_backward_typed<double>(grad, x, tanh_approx);
}

std::string compiler() {
#if defined(__clang__)
  return "Clang " __clang_version__;
#elif defined(__GNUC__)
  return "GCC " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#elif defined(_MSC_VER)
  return "MSVC " + std::to_string(_MSC_VER);
#else
  return "unknown";
#endif
}

// OpenMP aborts the whole process when it cannot create a thread, so a count far beyond
// any machine's processors (set_num_threads(100000) crashed the interpreter) is refused.
int max_threads() {
#ifdef _OPENMP
  return std::max(256, omp_get_num_procs());
#else
  return 256;
#endif
}

void set_isa(const std::string& name) {
  try {
    pyzen::set_active_isa(name, "set_isa");
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

void set_bf16_path(const std::string& name) {
  try {
    pyzen::set_bf16_path(name, "set_bf16_path");
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pyzen CPU kernels (C++, OpenMP, run-time ISA dispatch).";

  m.def("matmul", &matmul, py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("bias") = py::none(),
        R"doc(Batched matrix product: a (B, M, K) @ b (B, K, N) [+ bias] -> new C-contiguous (B, M, N).

Both arrays must be float32 or both float64 (no conversion is done); any strides,
including 0 (broadcast) and negative, are accepted. Float32 accumulates in float32.
bias: None or a C-contiguous (N,) array of the same dtype, added to every row (the
products accumulate onto it: nn.Linear's bias without a second pass over C).
Raises ValueError for bad shapes or strides, TypeError for bad dtypes.)doc");

  m.def("matmul_bf16", &matmul_bf16, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("bias") = py::none(),
        R"doc(Autocast's bfloat16 product: float32 a (B, M, K) @ b (B, K, N) -> float32 (B, M, N),
the operands rounded to bfloat16 (nearest even; float32 denormals flush to zero), the
products accumulated in float32, on the active bfloat16 path (bf16_path(): 'amx' or
'avx512_bf16'). Any strides and an optional float32 bias, as matmul. Raises ValueError on the 'float32' path, where the
caller rounds the operands and calls matmul.)doc");

  m.def("round_bf16", &round_bf16, py::arg("x").noconvert(),
        "A C-contiguous float32 array rounded to the nearest bfloat16 (ties to even), as float32: "
        "autocast's operands where a kernel computes in float32. Denormals and NaN are kept.");

  m.def("_matmul_blocking", [](int64_t k, bool f64) {
        const pyzen::MatmulBlocking b = pyzen::matmul_blocking(k, f64);
        py::dict d;
        d["mr"] = b.mr; d["nr"] = b.nr; d["kc_max"] = b.kc_max; d["kc"] = b.kc; d["mc"] = b.mc; d["nc"] = b.nc;
        return d;
      },
      py::arg("k"), py::arg("f64") = false,
      "matmul's blocking for inner size k on the active ISA (for tests): mr, nr, kc_max, kc, mc, nc.");
  m.def("gelu_forward", &gelu_forward, py::arg("x").noconvert(), py::arg("approximate") = "none",
        "GELU of a C-contiguous float32/float64 array: exact (erf) or approximate='tanh'.");
  m.def("gelu_backward", &gelu_backward, py::arg("grad").noconvert(), py::arg("x").noconvert(),
        py::arg("approximate") = "none", "grad * GELU'(x) for C-contiguous arrays of one shape and dtype.");

  pyzen_bind_layer_norm(m);
  pyzen_bind_cross_entropy(m);
  pyzen_bind_adamw(m);
  pyzen_bind_attention(m);

  m.def("fma_loop", [](int64_t iters) {
        if (iters < 0) throw py::value_error("fma_loop: iters must be >= 0, got " + std::to_string(iters));
        py::gil_scoped_release release;
        return pyzen::fma_loop(iters);
      },
      py::arg("iters"), "Run float32 FMA chains on every thread with the active ISA; returns the FLOPs done.");

  m.def("memory_bandwidth", [](int64_t bytes_per_thread, int64_t rounds, const std::string& mode) {
        const int m = mode == "read" ? 0 : mode == "copy" ? 1 : mode == "update" ? 2 : -1;
        if (m < 0)
          throw py::value_error("memory_bandwidth: mode must be 'read', 'copy' or 'update', got '" + mode + "'");
        if (bytes_per_thread < 2048 || bytes_per_thread > (int64_t(1) << 31) || rounds < 1)
          throw py::value_error("memory_bandwidth: expected 2048 <= bytes_per_thread <= 2^31 and rounds >= 1, got " +
                                std::to_string(bytes_per_thread) + " and " + std::to_string(rounds));
        double rate = 0.0;
        run_kernel("memory_bandwidth", [&] { rate = pyzen::memory_bandwidth(bytes_per_thread, rounds, m); });
        return rate;
      },
      py::arg("bytes_per_thread"), py::arg("rounds"), py::arg("mode"),
      "Bytes read plus written per second when every thread streams `rounds` times over a private "
      "working set of bytes_per_thread: mode 'read' (sum), 'copy' or 'update' (y += x). The roofs.");

  m.def("isa", [] { return std::string(pyzen::isa_name(pyzen::active_isa())); },
        "The instruction set the CPU kernels use: 'avx512', 'avx2' or 'scalar'.");
  m.def("supported_isas", [] {
        std::vector<std::string> names;
        for (pyzen::Isa isa : pyzen::supported_isas()) names.emplace_back(pyzen::isa_name(isa));
        return names;
      },
      "Instruction sets this CPU can run, best first; always ends with 'scalar'.");
  m.def("set_isa", &set_isa, py::arg("name"),
        "Force the CPU kernels onto one instruction set from supported_isas() (ValueError "
        "otherwise). The environment variable PYZEN_ISA does the same at import.");

  m.def("bf16_paths", [] {
        std::vector<std::string> names;
        for (pyzen::Bf16Path p : pyzen::supported_bf16_paths()) names.emplace_back(pyzen::bf16_path_name(p));
        return names;
      },
      "Where autocast's bfloat16 products can run now: 'amx', 'avx512_bf16' (while the ISA is "
      "'avx512'), and always 'float32' (the float32 kernels on rounded operands).");
  m.def("bf16_path", [] { return std::string(pyzen::bf16_path_name(pyzen::active_bf16_path())); },
        "The bfloat16 path in use: the one set (initially 'amx' where supported, else 'float32'), "
        "or 'float32' while the ISA is not 'avx512'.");
  m.def("set_bf16_path", &set_bf16_path, py::arg("name"),
        "Force bfloat16 products onto one path from bf16_paths() (ValueError otherwise).");
  m.def("bf16_note", [] { return pyzen::bf16_note(); },
        "Why a bfloat16 path this CPU has is not offered (e.g. the kernel refused AMX), or ''.");

  m.def("get_num_threads", &pyzen::get_num_threads,
        "Threads the CPU kernels use (1 when built without OpenMP).");
  m.def("set_num_threads", [](int64_t n) {
        if (n < 1 || n > max_threads())
          throw py::value_error("set_num_threads: expected 1 <= n <= " + std::to_string(max_threads()) +
                                ", got " + std::to_string(n));
        pyzen::set_num_threads(static_cast<int>(n));
      },
      py::arg("n"),
      "Set the CPU kernels' thread count, 1 <= n <= max(256, processors) (ignored when built "
      "without OpenMP).");

  m.def("_buffer_cache_bytes", &pyzen::cached_bytes,
        "Bytes of released large result buffers held for reuse (buffer_cache.h; for tests).");

  m.def("compiler", &compiler, "Compiler that built this module, e.g. 'GCC 12.2.0'.");
  m.def("has_openmp", [] { return pyzen::kHasOpenMP; }, "Whether this module was built with OpenMP.");

  // Raising here makes `import pyzen._C` fail with ImportError carrying this message:
  // an explicit request for an ISA is never silently downgraded.
  if (const char* env = std::getenv("PYZEN_ISA"); env != nullptr && *env != '\0')
    pyzen::set_active_isa(env, "PYZEN_ISA");
}
