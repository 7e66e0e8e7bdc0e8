// pyzen._cuda: Python bindings for the CUDA backend. At this stage: device queries only.
// Importing never fails for lack of a GPU or driver: the runtime is linked statically,
// and device_count() / status() report what is missing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "device.h"

namespace py = pybind11;
namespace cu = pyzen::cuda;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pyzen CUDA kernels and device queries.";

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
}
