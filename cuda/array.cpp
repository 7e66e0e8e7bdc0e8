// Device buffers, the caching allocator and host <-> device copies (see array.h).
//
// The allocator rounds each request up to a size class (multiples of 512 bytes up to
// 1 MiB, then four classes per power of two: at most 25% waste) and keeps freed blocks in
// a free list per class: a training loop that allocates the same shapes every step calls
// cudaMalloc only in its first step. cudaMalloc failing with out-of-memory frees the
// cache and retries once.
#include "array.h"

#include <cuda_runtime.h>

#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace pyzen::cuda {

void check_status(int code, const char* op, const char* what) {
  const auto err = static_cast<cudaError_t>(code);
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();  // clear a non-sticky error so later calls are unaffected
  throw std::runtime_error(std::string(op) + ": " + what + " failed (" + cudaGetErrorName(err) +
                           ": " + cudaGetErrorString(err) + ")");
}

void check_launch(const char* op, const char* kernel) {
  check_status(cudaGetLastError(), op, (std::string("launch of ") + kernel).c_str());
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
    case DType::bf16: return "bfloat16";
  }
  return "?";
}

std::size_t itemsize(DType d) {
  switch (d) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::b8: return 1;
    case DType::bf16: return 2;
  }
  return 1;
}

namespace {

std::size_t size_class(std::size_t bytes) {
  constexpr std::size_t kSmall = 512, kLarge = std::size_t(1) << 20;
  if (bytes <= kLarge) return (bytes + kSmall - 1) / kSmall * kSmall;
  std::size_t pow2 = kLarge;
  while (pow2 * 2 < bytes) pow2 *= 2;
  const std::size_t step = pow2 / 4;  // classes pow2 * {1.25, 1.5, 1.75, 2}
  return (bytes + step - 1) / step * step;
}

class Allocator {
 public:
  void* allocate(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = free_[bytes];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      cached_ -= bytes;
      allocated_ += bytes;
      return p;
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached();
      err = cudaMalloc(&p, bytes);
    }
    if (err != cudaSuccess)
      check_status(err, "pyzen.cuda allocator",
                   ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str());
    allocated_ += bytes;
    return p;
  }

  void release(void* p, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    free_[bytes].push_back(p);
    allocated_ -= bytes;
    cached_ += bytes;
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached();
  }

  std::size_t allocated() {
    std::lock_guard<std::mutex> lock(mu_);
    return allocated_;
  }

  std::size_t reserved() {
    std::lock_guard<std::mutex> lock(mu_);
    return allocated_ + cached_;
  }

 private:
  // Caller holds mu_. Frees every cached block; the first failure is reported after all
  // blocks were tried, so one bad block does not leak the others.
  void release_cached() {
    cudaError_t first = cudaSuccess;
    for (auto& [bytes, list] : free_) {
      for (void* p : list) {
        const cudaError_t err = cudaFree(p);
        if (err != cudaSuccess && first == cudaSuccess) first = err;
      }
      cached_ -= bytes * list.size();
      list.clear();
    }
    check_status(first, "pyzen.cuda.empty_cache", "cudaFree");
  }

  std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t allocated_ = 0, cached_ = 0;
};

// Never destroyed: blocks may be returned while the process exits.
Allocator& allocator() {
  static Allocator* a = new Allocator();
  return *a;
}

void check_shape(const std::vector<std::int64_t>& shape, const char* op) {
  if (shape.size() > static_cast<std::size_t>(kMaxDims))
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(shape.size()) +
                                " dims; CUDA arrays have at most " + std::to_string(kMaxDims));
  for (std::int64_t s : shape)
    if (s < 0) throw std::invalid_argument(std::string(op) + ": negative dimension " + std::to_string(s));
}

}  // namespace

Buffer::Buffer(std::size_t requested) {
  if (requested == 0) return;  // size-0 arrays own no device memory
  bytes = size_class(requested);
  ptr = allocator().allocate(bytes);
}

Buffer::~Buffer() {
  if (ptr) allocator().release(ptr, bytes);
}

std::int64_t Array::numel() const {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n *= s;
  return n;
}

bool Array::is_contiguous() const {
  if (numel() == 0) return true;
  std::int64_t expected = 1;
  for (int d = ndim() - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

void* Array::data() const {
  return static_cast<char*>(buffer->ptr) + offset * static_cast<std::int64_t>(itemsize(dtype));
}

Array empty(const std::vector<std::int64_t>& shape, DType dtype, const char* op) {
  check_shape(shape, op);
  Array a;
  a.shape = shape;
  a.strides.assign(shape.size(), 1);
  std::int64_t n = 1;
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    a.strides[d] = n;
    if (shape[d] && n > (std::int64_t(1) << 50) / shape[d])
      throw std::invalid_argument(std::string(op) + ": shape too large");
    n *= shape[d];
  }
  a.dtype = dtype;
  a.buffer = std::make_shared<Buffer>(static_cast<std::size_t>(n) * itemsize(dtype));
  return a;
}

Array view(const Array& base, const std::vector<std::int64_t>& shape,
           const std::vector<std::int64_t>& strides, std::int64_t offset, const char* op) {
  check_shape(shape, op);
  if (strides.size() != shape.size())
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(shape.size()) + " sizes but " +
                                std::to_string(strides.size()) + " strides");
  Array v;
  v.buffer = base.buffer;
  v.shape = shape;
  v.strides = strides;
  v.offset = offset;
  v.dtype = base.dtype;
  if (v.numel() == 0) return v;
  std::int64_t lo = offset, hi = offset;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const std::int64_t reach = (shape[d] - 1) * strides[d];
    (reach < 0 ? lo : hi) += reach;
  }
  const auto capacity = static_cast<std::int64_t>(base.buffer->bytes / itemsize(base.dtype));
  if (lo < 0 || hi >= capacity)
    throw std::invalid_argument(std::string(op) + ": view reaches elements " + std::to_string(lo) + ".." +
                                std::to_string(hi) + " of a buffer holding " + std::to_string(capacity));
  return v;
}

std::size_t memory_allocated() { return allocator().allocated(); }
std::size_t memory_reserved() { return allocator().reserved(); }
void empty_cache() { allocator().empty_cache(); }

void synchronize() { check_status(cudaDeviceSynchronize(), "pyzen.cuda.synchronize", "cudaDeviceSynchronize"); }

void copy_to_device(const Array& a, const void* host, const char* op) {
  if (!a.is_contiguous()) throw std::invalid_argument(std::string(op) + ": device side must be contiguous");
  const std::size_t bytes = static_cast<std::size_t>(a.numel()) * itemsize(a.dtype);
  if (bytes == 0) return;
  check_status(cudaMemcpy(a.data(), host, bytes, cudaMemcpyHostToDevice), op, "cudaMemcpy (host to device)");
}

void copy_to_host(void* host, const Array& a, const char* op) {
  if (!a.is_contiguous()) throw std::invalid_argument(std::string(op) + ": device side must be contiguous");
  const std::size_t bytes = static_cast<std::size_t>(a.numel()) * itemsize(a.dtype);
  if (bytes == 0) return;
  check_status(cudaMemcpy(host, a.data(), bytes, cudaMemcpyDeviceToHost), op, "cudaMemcpy (device to host)");
}

}  // namespace pyzen::cuda
