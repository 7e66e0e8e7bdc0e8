// pyzen._C.adamw_step: validate every list entry, release the GIL, call kernels/adamw.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bind_util.h"
#include "kernels/adamw.h"

namespace py = pybind11;
using pyzen::bind::check_aligned;
using pyzen::bind::shape_str;

namespace {

constexpr const char* kOp = "adamw_step";

std::string where(const char* list, size_t i) { return std::string(list) + "[" + std::to_string(i) + "]"; }

// list[i] as an array shaped and typed like `like` (or any float32/float64 array when
// like is null), C-contiguous, and writeable when it is updated in place.
py::array entry(const py::list& list, const char* name, size_t i, const py::array* like, bool writeable) {
  py::handle h = list[i];
  if (!py::isinstance<py::array>(h))
    throw py::type_error(std::string(kOp) + ": " + where(name, i) + " must be a NumPy array, got " +
                         std::string(py::str(py::type::of(h).attr("__name__"))));
  py::array a = py::reinterpret_borrow<py::array>(h);
  const std::string what = std::string(kOp) + ": " + where(name, i);
  if (like == nullptr) {
    if (!a.dtype().equal(py::dtype::of<float>()) && !a.dtype().equal(py::dtype::of<double>()))
      throw py::type_error(what + " must be float32 or float64, got " + std::string(py::str(a.dtype())));
  } else {
    if (!a.dtype().equal(like->dtype()))
      throw py::type_error(what + " has dtype " + std::string(py::str(a.dtype())) + ", expected " +
                           std::string(py::str(like->dtype())) + " like params[" + std::to_string(i) + "]");
    if (shape_str(a) != shape_str(*like))
      throw py::value_error(what + " has shape " + shape_str(a) + ", expected " + shape_str(*like) +
                            " like params[" + std::to_string(i) + "]");
  }
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(what + " must be C-contiguous (it is " + (writeable ? "updated in place" : "read") +
                          " as one block); got strides that are not");
  if (writeable && !a.writeable()) throw py::value_error(what + " is read-only; it is updated in place");
  check_aligned(a, kOp, where(name, i));
  return a;
}

// The step writes params, exp_avgs, exp_avg_sqs and max_exp_avg_sqs in place, in parallel: an
// array it writes must share no memory with any other array of the call (only grads, which it
// only reads, may overlap each other). A sweep over the arrays sorted by address.
struct Span {
  uintptr_t begin, end;
  bool written;
  std::string name;
};

void check_no_overlap(std::vector<Span> spans) {
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  const Span* reaching = nullptr;          // the span seen so far that reaches furthest
  const Span* reaching_written = nullptr;  // the same among written spans
  for (const Span& s : spans) {
    const Span* hit = nullptr;
    if (reaching_written && s.begin < reaching_written->end) hit = reaching_written;
    else if (s.written && reaching && s.begin < reaching->end) hit = reaching;
    if (hit)
      throw py::value_error(std::string(kOp) + ": " + s.name + " and " + hit->name +
                            " share memory; every array the step updates in place needs memory of its own");
    if (!reaching || s.end > reaching->end) reaching = &s;
    if (s.written && (!reaching_written || s.end > reaching_written->end)) reaching_written = &s;
  }
}

void adamw_step(const py::list& params, const py::list& grads, const py::list& exp_avgs,
                const py::list& exp_avg_sqs, const std::optional<py::list>& max_exp_avg_sqs,
                const std::vector<double>& steps, double lr, double beta1, double beta2, double eps,
                double weight_decay, bool decoupled, bool maximize) {
  const size_t n = params.size();
  auto check_len = [&](const char* name, size_t len) {
    if (len != n)
      throw py::value_error(std::string(kOp) + ": " + name + " has " + std::to_string(len) +
                            " entries, expected " + std::to_string(n) + " (one per parameter)");
  };
  check_len("grads", grads.size());
  check_len("exp_avgs", exp_avgs.size());
  check_len("exp_avg_sqs", exp_avg_sqs.size());
  if (max_exp_avg_sqs) check_len("max_exp_avg_sqs", max_exp_avg_sqs->size());
  check_len("steps", steps.size());
  for (const auto& [name, value] : {std::pair{"lr", lr}, {"beta1", beta1}, {"beta2", beta2}, {"eps", eps},
                                    {"weight_decay", weight_decay}})
    if (!std::isfinite(value))
      throw py::value_error(std::string(kOp) + ": " + name + " must be finite, got " + std::to_string(value));

  std::vector<py::array> keep;  // owns every array while the GIL is released
  keep.reserve(5 * n);
  std::vector<pyzen::AdamwTensor<float>> f32;
  std::vector<pyzen::AdamwTensor<double>> f64;
  for (size_t i = 0; i < n; ++i) {
    if (!(steps[i] >= 1))
      throw py::value_error(std::string(kOp) + ": steps[" + std::to_string(i) + "] must be >= 1, got " +
                            std::to_string(steps[i]));
    py::array p = entry(params, "params", i, nullptr, true);
    py::array g = entry(grads, "grads", i, &p, false);
    py::array m = entry(exp_avgs, "exp_avgs", i, &p, true);
    py::array v = entry(exp_avg_sqs, "exp_avg_sqs", i, &p, true);
    py::array vmax = max_exp_avg_sqs ? entry(*max_exp_avg_sqs, "max_exp_avg_sqs", i, &p, true) : py::array();
    auto fill = [&](auto& t, auto* type_tag) {
      using T = std::remove_pointer_t<decltype(type_tag)>;
      t.param = static_cast<T*>(p.mutable_data());
      t.grad = static_cast<const T*>(g.data());
      t.exp_avg = static_cast<T*>(m.mutable_data());
      t.exp_avg_sq = static_cast<T*>(v.mutable_data());
      t.max_exp_avg_sq = max_exp_avg_sqs ? static_cast<T*>(vmax.mutable_data()) : nullptr;
      t.n = p.size();
      t.step = steps[i];
    };
    if (p.itemsize() == 4) {
      fill(f32.emplace_back(), static_cast<float*>(nullptr));
    } else {
      fill(f64.emplace_back(), static_cast<double*>(nullptr));
    }
    for (auto* a : {&p, &g, &m, &v, &vmax}) keep.push_back(std::move(*a));
  }
  std::vector<Span> spans;
  const char* names[] = {"params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"};
  for (size_t k = 0; k < keep.size(); ++k) {
    const py::array& a = keep[k];
    if (!a || a.size() == 0) continue;
    const auto begin = reinterpret_cast<uintptr_t>(a.data());
    spans.push_back({begin, begin + static_cast<uintptr_t>(a.nbytes()), k % 5 != 1, where(names[k % 5], k / 5)});
  }
  check_no_overlap(std::move(spans));
  const pyzen::AdamwHyper h{lr, beta1, beta2, eps, weight_decay, decoupled, maximize};
  py::gil_scoped_release release;
  pyzen::adamw_step(f32, f64, h);
}

}  // namespace

void pyzen_bind_adamw(py::module_& m) {
  m.def("adamw_step", &adamw_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs").none(true), py::arg("steps"), py::kw_only(),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("decoupled"), py::arg("maximize"),
        R"doc(One Adam (decoupled=False) or AdamW (decoupled=True) step over every parameter, in place.

params, grads, exp_avgs, exp_avg_sqs (and max_exp_avg_sqs for amsgrad, else None): lists of
C-contiguous float32/float64 arrays, entry i all of params[i]'s shape and dtype; steps[i] is
params[i]'s step count after this step (bias correction). One native call for all of them.)doc");
}
