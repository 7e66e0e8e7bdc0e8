// Batched matrix multiply C[b] = A[b] . B[b] on the CPU, float32 and float64.
#pragma once

#include <cstdint>

namespace pyzen {

template <typename T>
struct MatmulArgs {
  const T* a;  // element (b, i, p) at a[b*a_stride[0] + i*a_stride[1] + p*a_stride[2]]
  const T* b;  // element (b, p, j) at b[b*b_stride[0] + p*b_stride[1] + j*b_stride[2]]
  T* c;        // C-contiguous (batch, m, n) output, fully overwritten
  const T* bias = nullptr;  // n values added to every row of C (nn.Linear's), or nullptr
  int64_t batch, m, n, k;
  int64_t a_stride[3];  // in elements; any sign, 0 allowed (broadcast)
  int64_t b_stride[3];
};

// Uses the ISA from active_isa() and get_num_threads() threads. The result does not
// depend on the thread count: each C element's K-sum is always added up in the same order.
void matmul(const MatmulArgs<float>& args);
void matmul(const MatmulArgs<double>& args);

// float32 operands rounded to bfloat16 (autocast), products accumulated in float32, on the
// active bfloat16 path (active_bf16_path(): AMX tiles or AVX512-BF16). Returns false without
// touching C on the float32 path, where the caller rounds the operands and calls matmul.
// Bit-identical across thread counts, like matmul.
bool matmul_bf16(const MatmulArgs<float>& args);

// The blocking the active ISA's kernel uses for inner dimension k, for tests that want to
// sit on every tile and block edge: micro-tile mr x nr, the K-block kc (K is split into
// balanced blocks of at most kc_max), and the largest row block mc and column panel nc.
struct MatmulBlocking {
  int64_t mr, nr, kc_max, kc, mc, nc;
};
MatmulBlocking matmul_blocking(int64_t k, bool f64);

}  // namespace pyzen
