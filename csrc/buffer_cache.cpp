// Size classes are 256 KiB steps: the same shapes recur step after step in training, so an
// exact class match is the common case. Each block carries its class in a 64-byte header.
// One mutex: allocations this large are rare next to the work done on them.
#include "buffer_cache.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace pyzen {
namespace {

constexpr size_t kHeader = 64;
constexpr size_t kClass = size_t(256) << 10;

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // class bytes -> raw blocks
  size_t held = 0;
};

// Never destroyed: capsules may release buffers while the interpreter shuts down.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

void* cached_alloc(size_t bytes) {
  const size_t size = (bytes + kClass - 1) / kClass * kClass;
  Cache& c = cache();
  void* raw = nullptr;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      raw = it->second.back();
      it->second.pop_back();
      c.held -= size;
    }
  }
  if (raw == nullptr) {
    // malloc's family, not operator new: a refused request comes back as nullptr (also under
    // AddressSanitizer, whose operator new aborts instead of throwing).
    raw = std::aligned_alloc(64, size + kHeader);
    if (raw == nullptr) throw std::bad_alloc();
    *static_cast<size_t*>(raw) = size;
  }
  return static_cast<char*>(raw) + kHeader;
}

void cached_free(void* block) {
  void* raw = static_cast<char*>(block) - kHeader;
  const size_t size = *static_cast<size_t*>(raw);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.held + size <= kCacheCapBytes) {
      c.free_blocks[size].push_back(raw);
      c.held += size;
      return;
    }
  }
  std::free(raw);
}

size_t cached_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.held;
}

}  // namespace pyzen
