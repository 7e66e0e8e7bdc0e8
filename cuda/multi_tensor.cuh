// Multi-tensor launches: many tensors of one dtype in one kernel launch. The host cuts each
// tensor into chunks of kChunk elements and writes one entry per non-empty tensor (its
// pointers, size and first chunk) into a table passed as a kernel parameter, under the
// portable 4 KiB: no copy to the device, so no wait for the kernels before it. A block
// finds the tensor of its chunk by binary search over the entries' first chunks.
#pragma once

#include <cstdint>
#include <vector>

#include "common.cuh"

namespace pyzen::cuda {

constexpr std::int64_t kChunk = 4 * kThreads;

// E has `std::int64_t n` (elements) and `std::int64_t first_chunk`.
template <typename E>
constexpr int kMaxEntries = 3900 / int(sizeof(E));

template <typename E>
struct Table {
  E e[kMaxEntries<E>];
  int count;
  std::int64_t chunks;
};

// Calls launch(table) for consecutive groups of the non-empty entries, at most
// kMaxEntries<E> per table, with each entry's first chunk numbered within its table.
template <typename E, typename Launch>
void for_each_table(const std::vector<E>& entries, Launch launch) {
  Table<E> t;
  t.count = 0, t.chunks = 0;
  for (const E& e : entries) {
    if (e.n == 0) continue;  // an entry must own a chunk for the kernel's search
    if (t.count == kMaxEntries<E>) {
      launch(t);
      t.count = 0, t.chunks = 0;
    }
    t.e[t.count] = e;
    t.e[t.count++].first_chunk = t.chunks;
    t.chunks += (e.n + kChunk - 1) / kChunk;
  }
  if (t.count) launch(t);
}

// The index of the entry that owns `chunk`: the last whose first chunk is <= chunk.
template <typename E>
__device__ __forceinline__ int entry_of(const Table<E>& table, std::int64_t chunk) {
  int lo = 0, hi = table.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table.e[mid].first_chunk <= chunk) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

inline unsigned table_blocks(std::int64_t chunks) { return static_cast<unsigned>(chunks < 65536 * 16 ? chunks : 65536 * 16); }

}  // namespace pyzen::cuda
