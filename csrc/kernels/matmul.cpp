// matmul: batched C[b] = A[b] . B[b], float32/float64, arbitrary element strides.
//
// Algorithm (the BLIS/GotoBLAS layering): for each batch item, loop over column panels of
// NC columns and K-blocks of KC; pack the KC x NC block of B into NR-wide k-major slivers
// (shared by all threads), then every thread takes MC-row blocks of A (optionally split
// along N), packs its KC x MC block into MR-tall slivers, and sweeps the micro-kernel
// (matmul_ukernel.h) over MR x NR tiles. Packing turns any stride pattern (transposed,
// negative, 0 = broadcast) into unit-stride panels, so layout costs only the packing pass.
// Threads split only M and N, never K: each C element's sum runs over the K-blocks in
// order, so results do not depend on the thread count. Tiny problems skip packing.
//
// Cost: 2*M*N*K FLOPs per batch item; bytes moved ~ 4*(M*K*ceil(N/NC) + K*N + M*N)
// for float32 (A is re-read once per NC panel, B once, C once per K-block).
//
// Measured 2026-11-22, AMD EPYC 2 vCPUs (AVX2), float32, avx2 kernel vs NumPy/OpenBLAS
// 0.3.31 in the same process: 1024^3 2 threads 153 GFLOP/s (1.05x NumPy), 1 thread 63
// GFLOP/s (0.78x); 8192x768 @ 768x3072 2 threads 114 GFLOP/s (0.74x). benchmarks/RESULTS.md.
#include "kernels/matmul.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "cpu_features.h"
#include "kernels/matmul_ukernel.h"
#include "parallel.h"

namespace pyzen {
namespace {

using matmul_detail::UkernelFn;

// Portable micro-kernel: the shared template with one-element "vectors".
template <typename T>
struct ScalarVec {
  using scalar = T;
  using reg = T;
  static constexpr int width = 1;
  static T zero() { return T(0); }
  static T load(const T* p) { return *p; }
  static void store(T* p, T v) { *p = v; }
  static T broadcast(T x) { return x; }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T add(T a, T b) { return a + b; }
};

template <typename T>
void ukernel_scalar(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate) {
  gemm_ukernel<ScalarVec<T>, 4, 8>(kc, a, b, c, ldc, accumulate);
}

template <typename T>
struct Kernel {
  int mr, nr;
  UkernelFn<T> fn;
};

constexpr int kMaxTile = 12 * 32;  // largest MR * NR of any kernel (AVX-512 float32)

Kernel<float> select_kernel(Isa isa, float) {
#ifdef PYZEN_X86_KERNELS
  if (isa == Isa::avx512) return {12, 32, matmul_detail::sgemm_ukernel_avx512};
  if (isa == Isa::avx2) return {6, 16, matmul_detail::sgemm_ukernel_avx2};
#endif
  (void)isa;
  return {4, 8, ukernel_scalar<float>};
}

Kernel<double> select_kernel(Isa isa, double) {
#ifdef PYZEN_X86_KERNELS
  if (isa == Isa::avx512) return {12, 16, matmul_detail::dgemm_ukernel_avx512};
  if (isa == Isa::avx2) return {6, 8, matmul_detail::dgemm_ukernel_avx2};
#endif
  (void)isa;
  return {4, 8, ukernel_scalar<double>};
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

template <typename T>
struct Aligned {  // 64-byte aligned scratch buffer
  struct Free {
    void operator()(T* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<T[], Free> ptr;
  explicit Aligned(int64_t n)
      : ptr(static_cast<T*>(::operator new[](sizeof(T) * std::max<int64_t>(n, 1),
                                             std::align_val_t(64)))) {}
  T* get() const { return ptr.get(); }
};

// Pack rows [0, mc) x cols [0, kc) of a strided A block into MR-tall k-major slivers,
// zero-padding the last sliver to MR rows.
template <typename T>
void pack_a(T* dst, const T* a, int64_t rs, int64_t cs, int64_t mc, int64_t kc, int mr) {
  for (int64_t i0 = 0; i0 < mc; i0 += mr, dst += mr * kc) {
    const int m = static_cast<int>(std::min<int64_t>(mr, mc - i0));
    const T* src = a + i0 * rs;
    if (cs == 1) {  // row-major A: read each row contiguously
      for (int i = 0; i < m; ++i)
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[i * rs + p];
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < m; ++i) dst[p * mr + i] = src[i * rs + p * cs];
    }
    for (int i = m; i < mr; ++i)
      for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = T(0);
  }
}

// Pack one NR-wide sliver (kc rows x n <= nr columns) of a strided B block, k-major,
// zero-padded to NR columns.
template <typename T>
void pack_b_sliver(T* dst, const T* b, int64_t rs, int64_t cs, int64_t kc, int n, int nr) {
  if (cs == 1) {  // row-major B: contiguous copy per k
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = b + p * rs;
      T* d = dst + p * nr;
      for (int j = 0; j < n; ++j) d[j] = src[j];
      for (int j = n; j < nr; ++j) d[j] = T(0);
    }
  } else {  // e.g. transposed B: read each column contiguously when rs == 1
    for (int j = 0; j < n; ++j)
      for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = b[p * rs + j * cs];
    for (int64_t p = 0; p < kc; ++p)
      for (int j = n; j < nr; ++j) dst[p * nr + j] = T(0);
  }
}

template <typename T>
struct Gemm {
  const MatmulArgs<T>& x;
  Kernel<T> ker;
  int64_t mc, kc, nc;  // cache blocking: A block mc x kc in L2, B sliver kc x nr in L1

  Gemm(const MatmulArgs<T>& args, Kernel<T> k) : x(args), ker(k) {
    kc = std::max<int64_t>(64, 16384 / (ker.nr * static_cast<int64_t>(sizeof(T))));  // 16 KiB
    mc = std::max<int64_t>(ker.mr, (160 * 1024 / (kc * sizeof(T))) / ker.mr * ker.mr);
    nc = std::max<int64_t>(ker.nr, (2048 * 1024 / (kc * sizeof(T))) / ker.nr * ker.nr);
    kc = std::min(kc, x.k);
    nc = std::min(nc, round_up(x.n, ker.nr));
  }
  int64_t a_buffer_size() const { return mc * kc; }
  int64_t b_buffer_size() const { return nc * kc; }

  // C[bi] for one batch item. With team=true every thread of the enclosing parallel region
  // calls this together (B packing is shared, M/N tiles are split); otherwise the calling
  // thread does the whole item alone (tid = 0, nt = 1).
  void run_item(int64_t bi, T* bpack, T* apack, bool team) const {
    const int tid = team ? thread_id() : 0;
    const int nt = team ? team_size() : 1;
    const int mr = ker.mr, nr = ker.nr;
    const int64_t M = x.m, N = x.n, K = x.k;
    const T* A = x.a + bi * x.a_stride[0];
    const T* B = x.b + bi * x.b_stride[0];
    T* C = x.c + bi * M * N;
    // Enough M-blocks for every thread when M allows it; otherwise split N as well.
    const int64_t mcb = std::min(mc, round_up(ceil_div(M, nt), mr));
    const int64_t n_ic = ceil_div(M, mcb);
    alignas(64) T tmp[kMaxTile];

    for (int64_t j0 = 0; j0 < N; j0 += nc) {
      const int64_t ncur = std::min(nc, N - j0);
      const int64_t n_sl = ceil_div(ncur, nr);
      const int64_t n_js = std::min<int64_t>(n_sl, n_ic >= nt ? 1 : ceil_div(nt, n_ic));
      for (int64_t p0 = 0; p0 < K; p0 += kc) {
        const int64_t kcur = std::min(kc, K - p0);
        const bool accumulate = p0 > 0;
        for (int64_t s = tid; s < n_sl; s += nt)
          pack_b_sliver(bpack + s * nr * kcur,
                        B + p0 * x.b_stride[1] + (j0 + s * nr) * x.b_stride[2], x.b_stride[1],
                        x.b_stride[2], kcur, static_cast<int>(std::min<int64_t>(nr, ncur - s * nr)),
                        nr);
        if (team) {
#pragma omp barrier
        }
        int64_t packed_ic = -1;
        for (int64_t t = tid; t < n_ic * n_js; t += nt) {
          const int64_t ic = t / n_js, js = t % n_js;
          const int64_t i0 = ic * mcb, mcur = std::min(mcb, M - i0);
          if (ic != packed_ic) {
            pack_a(apack, A + i0 * x.a_stride[1] + p0 * x.a_stride[2], x.a_stride[1],
                   x.a_stride[2], mcur, kcur, mr);
            packed_ic = ic;
          }
          const int64_t s_begin = n_sl * js / n_js, s_end = n_sl * (js + 1) / n_js;
          for (int64_t s = s_begin; s < s_end; ++s) {
            const int64_t j = j0 + s * nr;
            const int n = static_cast<int>(std::min<int64_t>(nr, N - j));
            const T* bp = bpack + s * nr * kcur;
            for (int64_t ir = 0; ir < mcur; ir += mr) {
              const int m = static_cast<int>(std::min<int64_t>(mr, mcur - ir));
              const T* ap = apack + ir * kcur;
              T* cp = C + (i0 + ir) * N + j;
              if (m == mr && n == nr) {
                ker.fn(kcur, ap, bp, cp, N, accumulate);
              } else {  // edge tile: compute into scratch, copy the valid part
                ker.fn(kcur, ap, bp, tmp, nr, false);
                for (int i = 0; i < m; ++i)
                  for (int jj = 0; jj < n; ++jj)
                    cp[i * N + jj] = accumulate ? cp[i * N + jj] + tmp[i * nr + jj] : tmp[i * nr + jj];
              }
            }
          }
        }
        if (team) {
#pragma omp barrier
        }
      }
    }
  }
};

// Tiny problems: a direct triple loop beats packing. Sums over p in order, like the
// blocked path.
template <typename T>
void matmul_small_item(const MatmulArgs<T>& x, int64_t bi) {
  const T* A = x.a + bi * x.a_stride[0];
  const T* B = x.b + bi * x.b_stride[0];
  T* C = x.c + bi * x.m * x.n;
  const int64_t bs = x.b_stride[2];
  for (int64_t i = 0; i < x.m; ++i) {
    T* c = C + i * x.n;
    for (int64_t j = 0; j < x.n; ++j) c[j] = T(0);
    for (int64_t p = 0; p < x.k; ++p) {
      const T aip = A[i * x.a_stride[1] + p * x.a_stride[2]];
      const T* b = B + p * x.b_stride[1];
      if (bs == 1)
        for (int64_t j = 0; j < x.n; ++j) c[j] += aip * b[j];
      else
        for (int64_t j = 0; j < x.n; ++j) c[j] += aip * b[j * bs];
    }
  }
}

template <typename T>
void matmul_impl(const MatmulArgs<T>& x) {
  if (x.batch == 0 || x.m == 0 || x.n == 0) return;
  if (x.k == 0) {
    std::fill(x.c, x.c + x.batch * x.m * x.n, T(0));
    return;
  }
  const int64_t work = x.m * x.n * x.k;  // multiply-adds per batch item
  constexpr int64_t kWorkPerThread = 1 << 18;
  // At least kWorkPerThread multiply-adds per thread (double: no overflow on huge sizes).
  const double per_thread = static_cast<double>(x.batch) * static_cast<double>(work) / kWorkPerThread;
  const int nthreads = static_cast<int>(std::max(1.0, std::min<double>(get_num_threads(), per_thread)));

  if (work <= 32 * 32 * 32) {
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
    for (int64_t bi = 0; bi < x.batch; ++bi) matmul_small_item(x, bi);
    return;
  }

  const Gemm<T> g(x, select_kernel(active_isa(), T()));
  // Many batch items: one item per thread at a time (no barriers). Otherwise the whole
  // team works on each item in turn.
  const bool per_item = nthreads > 1 && x.batch >= nthreads &&
                        (x.batch % nthreads == 0 || x.batch >= 4 * nthreads);
  if (nthreads == 1 || per_item) {
    std::vector<Aligned<T>> apacks, bpacks;
    for (int t = 0; t < nthreads; ++t) {
      apacks.emplace_back(g.a_buffer_size());
      bpacks.emplace_back(g.b_buffer_size());
    }
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
      const int tid = thread_id(), nt = team_size();
      for (int64_t bi = tid; bi < x.batch; bi += nt)
        g.run_item(bi, bpacks[tid].get(), apacks[tid].get(), false);
    }
  } else {
    std::vector<Aligned<T>> apacks;
    for (int t = 0; t < nthreads; ++t) apacks.emplace_back(g.a_buffer_size());
    Aligned<T> bpack(g.b_buffer_size());
#pragma omp parallel num_threads(nthreads)
    {
      for (int64_t bi = 0; bi < x.batch; ++bi)
        g.run_item(bi, bpack.get(), apacks[thread_id()].get(), true);
    }
  }
}

}  // namespace

void matmul(const MatmulArgs<float>& args) { matmul_impl(args); }
void matmul(const MatmulArgs<double>& args) { matmul_impl(args); }

}  // namespace pyzen
