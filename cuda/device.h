// Device queries over the CUDA runtime, in plain C++ types so that bindings.cpp needs no
// CUDA headers. Every CUDA call's status is checked.
#pragma once

#include <string>
#include <utility>

namespace pyzen::cuda {

int device_count();         // 0 when there is no driver or no device; never throws
std::string status();       // "ok", or why CUDA cannot be used
std::string runtime_version();  // CUDA runtime linked into pyzen._cuda, e.g. "13.0"
// These throw std::invalid_argument for a bad index, std::runtime_error on CUDA failure;
// `caller` names the Python function in the message.
std::string device_name(int index, const char* caller);
std::pair<int, int> compute_capability(int index, const char* caller);

}  // namespace pyzen::cuda
