// Device arrays for pyzen._cuda: a refcounted device buffer from a caching allocator, and
// an Array (shape, strides in elements, offset, dtype) that views it. Views share the
// buffer, so the memory lives as long as any view does. Plain C++ (no CUDA headers), so
// bindings.cpp compiles with the host compiler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pyzen::cuda {

// bf16 only for buffers the kernels keep to themselves (attention's rounded inputs): no
// binding returns or accepts one.
enum class DType { f32, f64, i64, b8, bf16 };

const char* dtype_name(DType d);
std::size_t itemsize(DType d);

// Most dims any array may have: kernels carry shapes and strides in fixed-size structs.
constexpr int kMaxDims = 12;

// One allocation from the caching allocator. Its destructor returns the block to the cache
// (no CUDA call, so it is safe at interpreter exit and needs no synchronisation: every
// kernel runs on the one default stream, in order).
struct Buffer {
  void* ptr = nullptr;
  std::size_t bytes = 0;  // the size class actually reserved
  explicit Buffer(std::size_t requested);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

struct Array {
  std::shared_ptr<Buffer> buffer;
  std::int64_t offset = 0;  // in elements, from buffer->ptr
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides;  // in elements; 0 for broadcast dims, may be negative
  DType dtype = DType::f32;

  int ndim() const { return static_cast<int>(shape.size()); }
  std::int64_t numel() const;
  bool is_contiguous() const;  // C order (size-1 dims may have any stride)
  void* data() const;          // address of element [0, ..., 0]
};

// A new C-contiguous array (uninitialised). Throws std::invalid_argument on a bad shape,
// std::runtime_error when the device is out of memory (after emptying the cache once).
Array empty(const std::vector<std::int64_t>& shape, DType dtype, const char* op);

// A view of `base`'s buffer; throws std::invalid_argument naming `op` when any element it
// can reach lies outside the buffer.
Array view(const Array& base, const std::vector<std::int64_t>& shape,
           const std::vector<std::int64_t>& strides, std::int64_t offset, const char* op);

// Caching allocator statistics and control.
std::size_t memory_allocated();  // bytes in blocks held by live buffers
std::size_t memory_reserved();   // bytes obtained from cudaMalloc, live or cached
void empty_cache();              // cudaFree every cached block
void synchronize();              // cudaDeviceSynchronize, checked

// Copies between host and device (synchronous). `host` must be C-contiguous and hold
// a.numel() elements of a's dtype; the device side must be contiguous.
void copy_to_device(const Array& a, const void* host, const char* op);
void copy_to_host(void* host, const Array& a, const char* op);

// Throws std::runtime_error "<op>: <what> failed (<cuda error>)" for a failed status
// (code is a cudaError_t, as int so that this header needs no CUDA headers).
void check_status(int code, const char* op, const char* what);
// After a kernel launch: cudaGetLastError, checked.
void check_launch(const char* op, const char* kernel);

}  // namespace pyzen::cuda
