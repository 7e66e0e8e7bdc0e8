// CUDA runtime device queries for pyzen._cuda (compiled by nvcc, so every build of the
// CUDA module also proves the CUDA toolchain works).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "device.h"

namespace pyzen::cuda {
namespace {

std::string describe(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

// cudaGetDeviceCount, with the error cleared so later calls are not affected.
cudaError_t query_count(int* n) {
  *n = 0;
  const cudaError_t err = cudaGetDeviceCount(n);
  if (err != cudaSuccess) {
    *n = 0;
    (void)cudaGetLastError();
  }
  return err;
}

void check_index(int index, const char* caller) {
  int n = 0;
  const cudaError_t err = query_count(&n);
  if (index < 0 || index >= n)
    throw std::invalid_argument(std::string(caller) + ": invalid device index " +
                                std::to_string(index) + " (" + std::to_string(n) +
                                " CUDA devices; status: " +
                                (err == cudaSuccess ? std::string(n ? "ok" : "no CUDA device")
                                                    : status()) +
                                ")");
}

void check(cudaError_t err, const char* caller, const char* what) {
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw std::runtime_error(std::string(caller) + ": " + what + " failed (" + describe(err) + ")");
  }
}

}  // namespace

int device_count() {
  int n = 0;
  query_count(&n);
  return n;
}

std::string status() {
  int n = 0;
  const cudaError_t err = query_count(&n);
  if (err == cudaSuccess) return n > 0 ? "ok" : "no CUDA device";
  if (err == cudaErrorInsufficientDriver)
    return "no CUDA driver found, or the driver is older than the runtime (" + describe(err) + ")";
  if (err == cudaErrorNoDevice) return "no CUDA device (" + describe(err) + ")";
  return "CUDA unavailable (" + describe(err) + ")";
}

std::string runtime_version() {
  int v = 0;
  check(cudaRuntimeGetVersion(&v), "runtime_version", "cudaRuntimeGetVersion");
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::string device_name(int index, const char* caller) {
  check_index(index, caller);
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, index), caller, "cudaGetDeviceProperties");
  return prop.name;
}

std::pair<int, int> compute_capability(int index, const char* caller) {
  check_index(index, caller);
  int major = 0, minor = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index), caller,
        "cudaDeviceGetAttribute(major)");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index), caller,
        "cudaDeviceGetAttribute(minor)");
  return {major, minor};
}

}  // namespace pyzen::cuda
