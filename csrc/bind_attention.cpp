// pyzen._C.attention_forward / attention_backward: validate, release the GIL, call the
// flash-attention kernels (kernels/attention.cpp). Registered from bindings.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bind_util.h"
#include "cpu_features.h"
#include "kernels/attention.h"

namespace py = pybind11;
using pyzen::bind::check_aligned;
using pyzen::bind::dtype_str;
using pyzen::bind::new_array;
using pyzen::bind::run_kernel;
using pyzen::bind::shape_str;
using pyzen::bind::strides_str;

namespace {

std::vector<py::ssize_t> shape_of(const py::array& x) {
  return std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim());
}

// Where each batch item starts (element offsets over the leading dims, C order) and the
// element strides of the trailing dims; strides of length-1 dims are irrelevant (0).
struct Operand {
  std::vector<int64_t> offset;
  int64_t rs = 0, cs = 0;
};

Operand describe(const py::array& x, int nb, const std::string& op, const char* name,
                 bool unit_last) {
  const py::ssize_t item = x.itemsize();
  Operand d;
  std::vector<int64_t> st(x.ndim());
  for (py::ssize_t i = 0; i < x.ndim(); ++i) {
    if (x.size() > 0 && x.shape(i) > 1 && x.strides(i) % item != 0)
      throw py::value_error(op + ": strides of " + name + " " + strides_str(x) +
                            " are not multiples of its item size (" + std::to_string(item) + " bytes)");
    st[i] = x.shape(i) > 1 ? x.strides(i) / item : 0;
  }
  const bool empty = x.size() == 0;  // nothing is read: any strides will do
  check_aligned(x, op, name);
  const int trailing = static_cast<int>(x.ndim()) - nb;
  if (trailing == 2) {
    d.rs = st[nb];
    d.cs = st[nb + 1];
    if (unit_last && !empty && x.shape(nb + 1) > 1 && d.cs != 1)
      throw py::value_error(op + ": " + name + " with strides " + strides_str(x) +
                            " needs unit stride along its last dim; pass np.asarray(" + name +
                            ", order='C')");
  } else {
    d.rs = st[nb];
  }
  int64_t n = 1;
  for (int i = 0; i < nb; ++i) n *= x.shape(i);
  try {
    d.offset.assign(static_cast<size_t>(n), 0);
  } catch (const std::bad_alloc&) {  // n can be huge when x is empty or broadcast
    pyzen::bind::raise_memory_error(op, "the " + std::to_string(n) + " batch offsets of " + name);
  }
  std::vector<int64_t> idx(nb, 0);
  int64_t off = 0;
  for (int64_t b = 0; b < n; ++b) {  // odometer over the leading dims
    d.offset[b] = off;
    for (int i = nb - 1; i >= 0; --i) {
      off += st[i];
      if (++idx[i] < x.shape(i)) break;
      off -= st[i] * idx[i];
      idx[i] = 0;
    }
  }
  return d;
}

void check_float(const py::array& x, const py::dtype& want, const std::string& op, const char* name) {
  if (!x.dtype().equal(want))
    throw py::type_error(op + ": expected " + name + " of dtype " + std::string(py::str(want)) +
                         " (the dtype of q), got " + dtype_str(x));
}

void check_shape(const py::array& x, const std::vector<py::ssize_t>& want, const std::string& op,
                 const char* name) {
  if (shape_of(x) != want)
    throw py::value_error(op + ": expected " + name + " of shape " + shape_str(want) + ", got " +
                          shape_str(x));
}

struct Common {
  int nb = 0;
  std::vector<py::ssize_t> lead;
  int64_t n = 1, tq = 0, tk = 0, d = 0, dv = 0;
  bool f32 = true;
  Operand q, k, v, mask;
  pyzen::AttnMask mask_kind = pyzen::AttnMask::none;
  const void* mask_data = nullptr;
};

std::vector<py::ssize_t> with(std::vector<py::ssize_t> lead, std::initializer_list<py::ssize_t> tail) {
  lead.insert(lead.end(), tail.begin(), tail.end());
  return lead;
}

Common validate(const std::string& op, const py::array& q, const py::array& k, const py::array& v,
                const py::object& mask) {
  Common c;
  const auto f32 = py::dtype::of<float>(), f64 = py::dtype::of<double>();
  if (!q.dtype().equal(f32) && !q.dtype().equal(f64))
    throw py::type_error(op + ": expected q of dtype float32 or float64, got " + dtype_str(q));
  check_float(k, q.dtype(), op, "k");
  check_float(v, q.dtype(), op, "v");
  c.f32 = q.dtype().equal(f32);
  if (q.ndim() < 2 || k.ndim() != q.ndim() || v.ndim() != q.ndim())
    throw py::value_error(op + ": expected q, k, v with the same number (>= 2) of dims, got shapes " +
                          shape_str(q) + ", " + shape_str(k) + ", " + shape_str(v));
  c.nb = static_cast<int>(q.ndim()) - 2;
  c.lead.assign(q.shape(), q.shape() + c.nb);
  for (py::ssize_t s : c.lead) c.n *= s;
  c.tq = q.shape(c.nb);
  c.d = q.shape(c.nb + 1);
  c.tk = k.shape(c.nb);
  c.dv = v.shape(c.nb + 1);
  check_shape(k, with(c.lead, {c.tk, c.d}), op, "k");
  check_shape(v, with(c.lead, {c.tk, c.dv}), op, "v");
  c.q = describe(q, c.nb, op, "q", true);
  c.k = describe(k, c.nb, op, "k", true);
  c.v = describe(v, c.nb, op, "v", true);
  if (!mask.is_none()) {
    if (!py::isinstance<py::array>(mask))
      throw py::type_error(op + ": expected mask to be None or a NumPy array, got " +
                           std::string(py::str(py::type::of(mask))));
    const auto m = py::reinterpret_borrow<py::array>(mask);
    if (m.dtype().equal(py::dtype::of<bool>())) {
      c.mask_kind = pyzen::AttnMask::boolean;
    } else if (m.dtype().equal(q.dtype())) {
      c.mask_kind = pyzen::AttnMask::additive;
    } else {
      throw py::type_error(op + ": expected mask of dtype bool or " + dtype_str(q) + ", got " +
                           dtype_str(m));
    }
    check_shape(m, with(c.lead, {c.tq, c.tk}), op, "mask (broadcast it to the scores' shape)");
    c.mask = describe(m, c.nb, op, "mask", false);
    c.mask_data = m.data();
  }
  return c;
}

template <typename T>
pyzen::AttnRows<T> rows(const py::array& x, const Operand& d) {
  return {static_cast<const T*>(x.data()), d.offset.data(), d.rs};
}

template <typename T>
pyzen::AttentionArgs<T> make_args(const Common& c, const py::array& q, const py::array& k,
                                  const py::array& v, double scale, bool is_causal) {
  pyzen::AttentionArgs<T> a;
  a.n = c.n, a.tq = c.tq, a.tk = c.tk, a.d = c.d, a.dv = c.dv;
  a.scale = static_cast<T>(scale);
  a.causal = is_causal;
  a.q = rows<T>(q, c.q), a.k = rows<T>(k, c.k), a.v = rows<T>(v, c.v);
  a.mask_kind = c.mask_kind;
  a.mask = c.mask_data;
  a.mask_offset = c.mask.offset.data();
  a.mask_rs = c.mask.rs, a.mask_cs = c.mask.cs;
  return a;
}

template <typename T, typename Kernel>
py::tuple forward_typed(const std::string& op, const Common& c, const py::array& q, const py::array& k,
                        const py::array& v, double scale, bool is_causal, Kernel kernel) {
  py::array_t<T> out = new_array<T>(op, with(c.lead, {c.tq, c.dv}));
  py::array_t<T> lse = new_array<T>(op, with(c.lead, {c.tq}));
  auto a = make_args<T>(c, q, k, v, scale, is_causal);
  a.out = out.mutable_data();
  a.lse = lse.mutable_data();
  run_kernel(op, [&] { kernel(a); });
  return py::make_tuple(out, lse);
}

py::tuple attention_forward(const py::array& q, const py::array& k, const py::array& v,
                            const py::object& mask, bool is_causal, double scale) {
  const std::string op = "attention_forward";
  const Common c = validate(op, q, k, v, mask);
  const auto kernel = [](const auto& a) { pyzen::attention_forward(a); };
  return c.f32 ? forward_typed<float>(op, c, q, k, v, scale, is_causal, kernel)
               : forward_typed<double>(op, c, q, k, v, scale, is_causal, kernel);
}

// The AMX kernels' calls: float32 q, k, v, no mask, D and Dv <= 256, the amx bfloat16 path.
Common check_amx_call(const std::string& op, const py::array& q, const py::array& k, const py::array& v) {
  const Common c = validate(op, q, k, v, py::none());
  if (!c.f32) throw py::type_error(op + ": expected float32 arrays, got " + std::string(py::str(q.dtype())));
  if (pyzen::active_bf16_path() != pyzen::Bf16Path::amx)
    throw py::value_error(op + ": needs the 'amx' bfloat16 path, the active one is '" +
                          pyzen::bf16_path_name(pyzen::active_bf16_path()) + "'");
  if (c.d > 256 || c.dv > 256)
    throw py::value_error(op + ": head dims up to 256, got D=" + std::to_string(c.d) + " and Dv=" + std::to_string(c.dv));
  return c;
}

py::tuple attention_forward_bf16(const py::array& q, const py::array& k, const py::array& v, bool is_causal,
                                 double scale) {
  const std::string op = "attention_forward_bf16";
  const Common c = check_amx_call(op, q, k, v);
  return forward_typed<float>(op, c, q, k, v, scale, is_causal,
                              [](const auto& a) { pyzen::attention_forward_bf16(a); });
}

// grad, out (..., Tq, Dv) and lse (..., Tq) of q's dtype, or an exception naming `op`.
void check_backward_operands(const Common& c, const std::string& op, const py::array& q, const py::array& g,
                             const py::array& out, const py::array& lse) {
  check_float(g, q.dtype(), op, "grad");
  check_float(out, q.dtype(), op, "out");
  check_float(lse, q.dtype(), op, "lse");
  check_shape(g, with(c.lead, {c.tq, c.dv}), op, "grad");
  check_shape(out, with(c.lead, {c.tq, c.dv}), op, "out");
  check_shape(lse, with(c.lead, {c.tq}), op, "lse");
}

template <typename T, typename Kernel>
py::tuple backward_typed(const std::string& op, const Common& c, const py::array& g, const py::array& q,
                         const py::array& k, const py::array& v, const py::array& out, const py::array& lse,
                         double scale, bool is_causal, Kernel kernel) {
  const Operand dg = describe(g, c.nb, op, "grad", true);
  const Operand dout = describe(out, c.nb, op, "out", true);
  const Operand dlse = describe(lse, c.nb, op, "lse", false);
  py::array_t<T> dq = new_array<T>(op, with(c.lead, {c.tq, c.d}));
  py::array_t<T> dk = new_array<T>(op, with(c.lead, {c.tk, c.d}));
  py::array_t<T> dv = new_array<T>(op, with(c.lead, {c.tk, c.dv}));
  auto a = make_args<T>(c, q, k, v, scale, is_causal);
  a.g = rows<T>(g, dg);
  a.o = rows<T>(out, dout);
  a.lse_in = rows<T>(lse, dlse);
  a.dq = dq.mutable_data();
  a.dk = dk.mutable_data();
  a.dvv = dv.mutable_data();
  run_kernel(op, [&] { kernel(a); });
  return py::make_tuple(dq, dk, dv);
}

py::tuple attention_backward(const py::array& g, const py::array& q, const py::array& k,
                             const py::array& v, const py::array& out, const py::array& lse,
                             const py::object& mask, bool is_causal, double scale) {
  const std::string op = "attention_backward";
  const Common c = validate(op, q, k, v, mask);
  check_backward_operands(c, op, q, g, out, lse);
  const auto kernel = [](const auto& a) { pyzen::attention_backward(a); };
  return c.f32 ? backward_typed<float>(op, c, g, q, k, v, out, lse, scale, is_causal, kernel)
               : backward_typed<double>(op, c, g, q, k, v, out, lse, scale, is_causal, kernel);
}

py::tuple attention_backward_bf16(const py::array& g, const py::array& q, const py::array& k,
                                  const py::array& v, const py::array& out, const py::array& lse,
                                  bool is_causal, double scale) {
  const std::string op = "attention_backward_bf16";
  const Common c = check_amx_call(op, q, k, v);
  check_backward_operands(c, op, q, g, out, lse);
  return backward_typed<float>(op, c, g, q, k, v, out, lse, scale, is_causal,
                               [](const auto& a) { pyzen::attention_backward_bf16(a); });
}

}  // namespace

void pyzen_bind_attention(py::module_& m) {
  m.def("attention_forward", &attention_forward, py::arg("q").noconvert(), py::arg("k").noconvert(),
        py::arg("v").noconvert(), py::arg("mask") = py::none(), py::arg("is_causal") = false,
        py::arg("scale") = 1.0,
        R"doc(Fused softmax attention: (out, lse) for q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv).

out = softmax(q k^T * scale + mask) v of shape (..., Tq, Dv); lse (..., Tq) is the
log-sum-exp of the masked, scaled scores. q, k, v: one dtype, float32 or float64, equal
leading dims, unit stride along the last dim (other strides free, 0 = broadcast). mask:
None, or bool (True = attend) / additive of q's dtype with shape exactly (..., Tq, Tk) (any
strides, e.g. np.broadcast_to). is_causal: query i attends keys j <= i (top-left).
Fully masked rows give out = NaN and lse = -inf. Releases the GIL.)doc");
  m.def("attention_forward_bf16", &attention_forward_bf16, py::arg("q").noconvert(), py::arg("k").noconvert(),
        py::arg("v").noconvert(), py::arg("is_causal") = false, py::arg("scale") = 1.0,
        R"doc(attention_forward under bfloat16 autocast, on AMX tiles: float32 q, k, v (and the
probabilities) rounded to bfloat16, float32 accumulation and softmax. No mask; D and Dv up
to 256; only on the 'amx' bfloat16 path (ValueError otherwise). Returns (out, lse) as
attention_forward. Results do not depend on the thread count. Releases the GIL.)doc");
  m.def("attention_backward_bf16", &attention_backward_bf16, py::arg("grad").noconvert(),
        py::arg("q").noconvert(), py::arg("k").noconvert(), py::arg("v").noconvert(),
        py::arg("out").noconvert(), py::arg("lse").noconvert(), py::arg("is_causal") = false,
        py::arg("scale") = 1.0,
        R"doc((dq, dk, dv) for attention_forward_bf16 on AMX tiles: grad, q, k, v rounded to
bfloat16, and the probabilities and their gradients too for the products; float32
accumulation. The calls attention_forward_bf16 takes; ValueError otherwise. Results do not
depend on the thread count. Releases the GIL.)doc");
  m.def("attention_backward", &attention_backward, py::arg("grad").noconvert(),
        py::arg("q").noconvert(), py::arg("k").noconvert(), py::arg("v").noconvert(),
        py::arg("out").noconvert(), py::arg("lse").noconvert(), py::arg("mask") = py::none(),
        py::arg("is_causal") = false, py::arg("scale") = 1.0,
        R"doc((dq, dk, dv) for attention_forward, recomputing the probabilities from lse.

grad and out: (..., Tq, Dv) with unit last stride; lse: (..., Tq); the other arguments as
for attention_forward. Fully masked rows contribute nothing. Results do not depend on the
thread count. Releases the GIL.)doc");
}
