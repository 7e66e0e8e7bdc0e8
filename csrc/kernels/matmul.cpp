// matmul: batched C[b] = A[b] . B[b], float32/float64, arbitrary element strides.
//
// Algorithm (the BLIS/GotoBLAS layering): for each batch item, loop over column panels of
// NC columns and K-blocks of KC; pack the KC x NC block of B into NR-wide k-major slivers
// (shared by all threads, double-buffered), then every thread takes MC-row blocks of A
// (split along N too when M is too small for the team), packs its MC x KC block into
// MR-tall slivers, and sweeps the micro-kernel (matmul_ukernel.h) over MR x NR tiles, one
// B sliver (L1) against all A slivers of the block (L2). Packing turns any stride pattern
// (transposed, negative, 0 = broadcast) into unit-stride panels; a column-major A or
// row-major B whose K-block is compact is read in place instead (the micro-kernel takes
// the k-step of each operand). Threads split only M and N, never K, and the K-blocks
// depend only on K: each C element's sum runs over the same blocks in the same order, so
// results are bitwise identical for any thread count. Edge tiles run the same kernel call
// on a scratch copy of their part of C. Matrix-vector products (M <= 2) skip packing
// (gemm_rows). An optional bias (nn.Linear's) seeds C before the first K-block.
//
// The same driver runs the bfloat16 kernels of autocast (matmul_bf16: AMX tiles or
// AVX512-BF16), whose packing rounds the float32 operands to bfloat16 (matmul_bf16_pack.h)
// and pads K to a multiple of 32; they never read an operand in place.
//
// Cost: 2*M*N*K FLOPs per batch item; bytes moved ~ 4*(M*K*ceil(N/NC) + K*N + M*N)
// for float32 (A is re-read once per NC panel, B once, C once per K-block).
//
// Blocking: KC is each kernel set's kc_max, balanced (AVX2 float32, 6x16 tile: 384, a 24 KiB
// B sliver in the 32 KiB L1; AVX-512 float32, 12x32: 512; AMX, 32x32: 1024), MC = 192 KiB /
// (KC*4) rows (A block in L2; 384 KiB for AMX), NC = 1.5 MiB / (KC*4) columns (B panel in
// L3); row blocks of whole MR-slivers, their count a multiple of the thread count.
//
// Measured 2026-11-22, AMD EPYC (Zen 3) 2 vCPUs, AVX2, shared machine (load average 2-6
// from other jobs), float32, avx2 kernel vs NumPy 2.4.6 / OpenBLAS 0.3.31 Haswell kernel
// in the same process. FMA peak (inline-asm loop, 12 chains): 103 GFLOP/s per core, 206
// for 2. 1 thread, thread CPU time, best of interleaved runs: the micro-kernel alone (hot
// caches) 96-101 GFLOP/s (93-98% of peak); whole matmul 256^3..4096^3 82-92 GFLOP/s
// (0.91-1.17x NumPy), transformer shapes 8192 x {128..3072} 70-89 GFLOP/s (0.92-1.44x),
// GPT-step shapes 73-93 GFLOP/s (0.83-1.15x), batched 48 x 64 x {32,64} 51-77 GFLOP/s
// (0.86-1.38x), all three layouts. 2 threads (wall time, load 1.7-3.3; FMA peak 203):
// 1024^3 154-159 GFLOP/s (76-78%, 0.91-1.03x NumPy), 8192x3072x768 A.B^T 179 (88%, 0.99x),
// 768x128x384 154-174 (0.90-1.30x), batched 48x64x32x64 130-143 (2.1-2.2x NumPy, 1.2-1.3x
// torch 2.13). Everything in benchmarks/RESULTS.md.
//
// History (what each idea gave; 1 thread unless noted, same machine):
//   v0 (9da9ca0) KC=256 + remainder, MC=156, NC=2048, packing with a run-time MR, a scalar
//      triple loop below 32^3, fresh buffers per call: 0.78-0.95x NumPy (1024^3 0.82x,
//      8192x384x128 0.81x at 62 GFLOP/s).
//   v1 packing loops with compile-time MR/NR (fully unrolled row streams): a 156 x 256 A
//      block 13.3 -> 8.2 us (A packing was ~13% of the kernel time when N = 128);
//      balanced K-blocks <= 384 instead of 256 + remainder (one C pass fewer for K=384);
//      MC/NC derived from the actual KC. 8192x384x128: 62 -> 81 GFLOP/s.
//   v2 row-major B packed row by row across all slivers (was: sliver by sliver, a 4 KiB
//      stride and a new page per element when N = 1024): 1040x1040x1024 76 -> 90 GFLOP/s,
//      1024^3 0.83x -> 0.97-0.99x.
//   v3 threads: row blocks a multiple of the team size (768 rows: 2 x 384 instead of
//      5 x 156, a 3:2 imbalance), a double-buffered shared B panel (one barrier per K-block
//      instead of two), per-thread grow-only scratch (no page faults per call).
//   v4 micro-kernel takes the k-step of A and B, so compact column-major A / row-major B
//      are used in place (batched attention-like shapes pack nothing or one operand);
//      C tile prefetched at the start, k loop unrolled by 4. Hot kernel 96-101 GFLOP/s.
//   v5 tiny problems: the scalar triple loop (SSE2, no FMA) was 2-4x slower than the
//      blocked path even at 16^3 (48 x 32^3: 252 -> 60 us): removed. A register-
//      accumulating row kernel for tiny shapes was tried and lost (single FMA chains are
//      latency-bound: 24x40x24 3.5 us vs 2.6 blocked); kept only for M <= 2 (GEMV, B
//      streamed once): 1 x 768 x 768 100 -> 47 us (NumPy 37).
//   v6 per-item mode (batched products): contiguous item ranges per thread instead of
//      round-robin items; 48x64x32x64 at 2 threads 54-89 -> 101-143 GFLOP/s (noisy runs).
//   Not kept: an AVX2 8x8-transpose packing of row-major A (0.13 vs 0.20 ns/element, ~2%
//      at N = 128) -- it needs ISA-specific shuffles outside the shared template.
//
// 2026-12-05, Intel Xeon (family 6 model 207, Emerald Rapids: AVX-512, AVX512-BF16, AMX), 2 vCPUs;
// FMA peak 248 GFLOP/s per core, 495 for 2 (AVX-512):
//   v7 AVX-512 on by default (12x32 tile). Hot micro-kernel 243-245 GFLOP/s (98% of a core's
//      peak; 14x32, 8x48 and 6x64 tiles measured the same). Whole matmul, 1 thread: 84-86% of
//      peak (ukernel 92% of the time, packing 8%, B sliver read from L2); 2 threads 78-87%,
//      0.85-0.95x NumPy / torch (benchmarks/RESULTS.md). Tried without gain (+-2%): loop
//      order with the A sliver in L1 and B streamed from L2, splitting N instead of M
//      between threads, larger A blocks, packing row-major A by 16 x 16 register transposes.
//   v8 row blocks of whole slivers, as equal as they come (1024 rows, 2 threads: 16 slivers
//      each, where rounding the block to MR gave 576 vs 448 rows); AVX-512 float32 K-blocks
//      of 512 instead of the 24 KiB-sliver rule's 192 (half the passes over C): 1 thread,
//      geometric mean of 8 shapes 196 -> 207 GFLOP/s, 2 threads 376 -> 392.
//   v9 bfloat16 kernel sets (AMX 32x32, AVX512-BF16 12x32) in the same driver; AMX, 2
//      threads: 2048^3 1.7 -> 2.3 TFLOP/s with KC 1024 and A in 32-k chunks (RESULTS.md).
//   v10 bias seeded into C (nn.Linear): saves a pass over the output.
#include "kernels/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "cpu_features.h"
#include "kernels/matmul_ukernel.h"
#include "parallel.h"

namespace pyzen {
namespace {

using matmul_detail::Kernels;

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
  static T fma1(T a, T b, T c) { return a * b + c; }
};

constexpr int kMaxTile = 32 * 32;  // largest MR * NR of any kernel (AMX bfloat16)

Kernels<float> select_kernels(Isa isa, float) {
#ifdef PYZEN_X86_KERNELS
  if (isa == Isa::avx512) return matmul_detail::sgemm_kernels_avx512();
  if (isa == Isa::avx2) return matmul_detail::sgemm_kernels_avx2();
#endif
  (void)isa;
  return make_gemm_kernels<ScalarVec<float>, 4, 8, 768>();
}

Kernels<double> select_kernels(Isa isa, double) {
#ifdef PYZEN_X86_KERNELS
  if (isa == Isa::avx512) return matmul_detail::dgemm_kernels_avx512();
  if (isa == Isa::avx2) return matmul_detail::dgemm_kernels_avx2();
#endif
  (void)isa;
  return make_gemm_kernels<ScalarVec<double>, 4, 8, 384>();
}

// The bfloat16 kernels, or nullptr on the float32 path (rounded operands in the caller).
const Kernels<float, uint16_t>* select_bf16_kernels(Bf16Path path) {
#ifdef PYZEN_X86_KERNELS
  static const Kernels<float, uint16_t> amx = matmul_detail::sbgemm_kernels_amx();
  static const Kernels<float, uint16_t> dp = matmul_detail::sbgemm_kernels_avx512bf16();
  if (path == Bf16Path::amx) return &amx;
  if (path == Bf16Path::avx512_bf16) return &dp;
#endif
  (void)path;
  return nullptr;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Per-thread, grow-only, 64-byte aligned scratch (slot 0: packed A, slot 1: packed B).
// Reused across calls: a fresh multi-megabyte buffer per call costs page faults that are
// a visible fraction of a medium-size matmul.
void* scratch(int slot, int64_t bytes) {
  struct Buffer {
    void* p = nullptr;
    int64_t size = 0;
    ~Buffer() { ::operator delete[](p, std::align_val_t(64)); }
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[slot];
  if (b.size < bytes) {
    ::operator delete[](b.p, std::align_val_t(64));
    b.p = nullptr;
    b.size = 0;
    b.p = ::operator new[](static_cast<size_t>(bytes), std::align_val_t(64));
    b.size = bytes;
  }
  return b.p;
}

// Cache budgets (bytes); the K-block (KC) is each kernel set's kc_max (matmul_ukernel.h).
// MC: the packed A block (MC x KC) stays in L2. NC: the packed B panel (KC x NC) is shared
// by the threads from L3. The bfloat16 (AMX) kernels take a 384 KiB A block.
constexpr int64_t kL2Block = 192 * 1024;
constexpr int64_t kL3Panel = 3 * 512 * 1024;
constexpr int64_t kBf16L2Block = 384 * 1024;
constexpr int64_t kBf16L1Sliver = 32 * 1024;
// Operands read in place (no packing) when a K-block of them spans at most this much.
constexpr int64_t kInPlaceSpan = 64 * 1024;

// K blocks depend only on K and the kernel, never on the thread count: this is what keeps
// results identical for any number of threads.
template <typename T, typename P>
MatmulBlocking blocking(const Kernels<T, P>& ker, int64_t k) {
  const int64_t sz = sizeof(P);
  MatmulBlocking b;
  b.mr = ker.mr;
  b.nr = ker.nr;
  b.kc_max = ker.kc_max;
  b.kc = round_up(ceil_div(k, ceil_div(k, b.kc_max)), ker.kq);
  const int64_t l2_block = ker.kq > 1 ? kBf16L2Block : kL2Block;
  b.mc = std::max<int64_t>(ker.mr, l2_block / (b.kc * sz) / ker.mr * ker.mr);
  b.nc = std::max<int64_t>(ker.nr, kL3Panel / (b.kc * sz) / ker.nr * ker.nr);
  return b;
}

template <typename T, typename P>
struct Gemm {
  const MatmulArgs<T>& x;
  Kernels<T, P> ker;
  int64_t kc, n_kb;   // K split into n_kb balanced blocks of at most kc
  int64_t mc, nc;     // M block per task, N panel
  int nt;             // threads working on one batch item (1 in per-item mode)
  int64_t n_ic, n_js; // tasks per (panel, K-block): n_ic row blocks x n_js column splits
  int64_t n_sliv;     // MR-row slivers of A, shared out among the row blocks

  Gemm(const MatmulArgs<T>& args, Kernels<T, P> k, int team) : x(args), ker(k), nt(team) {
    const int64_t M = x.m, N = x.n;
    const MatmulBlocking bl = blocking(ker, x.k);
    kc = bl.kc;
    n_kb = ceil_div(x.k, kc);
    const int64_t mc_max = bl.mc, nc_max = bl.nc;
    nc = round_up(ceil_div(N, ceil_div(N, nc_max)), ker.nr);  // balanced panels
    // Row blocks: at least one per thread and a multiple of the team size while there are
    // few of them, so that the threads get equal shares.
    n_sliv = ceil_div(M, ker.mr);
    n_ic = ceil_div(M, mc_max);
    if (nt > 1 && n_ic < 8 * nt) n_ic = std::min(round_up(n_ic, nt), n_sliv);
    mc = ceil_div(n_sliv, n_ic) * ker.mr;  // the largest block (row_block sizes them)
    // Too few rows for the team: split the columns of each panel as well.
    n_js = n_ic >= nt ? 1 : std::min(ceil_div(nt, n_ic), ceil_div(nc, ker.nr));
  }
  int64_t a_buffer_size() const { return (mc + ker.mr) * kc + kMaxTile; }
  int64_t b_buffer_size() const { return 2 * nc * kc + kMaxTile; }  // double-buffered

  // C[bi] for one batch item. With team=true every thread of the enclosing parallel region
  // calls this together (B packing is shared, M/N tiles are split); otherwise the calling
  // thread does the whole item alone (tid = 0, nt = 1).
  void run_item(int64_t bi, P* bbuf, P* apack, bool team) const {
    const int tid = team ? thread_id() : 0;
    const int mr = ker.mr, nr = ker.nr;
    const int64_t M = x.m, N = x.n, K = x.k;
    const T* A = x.a + bi * x.a_stride[0];
    const T* B = x.b + bi * x.b_stride[0];
    const int64_t a_rs = x.a_stride[1], a_cs = x.a_stride[2];
    const int64_t b_rs = x.b_stride[1], b_cs = x.b_stride[2];
    T* C = x.c + bi * M * N;
    alignas(64) T tmp[kMaxTile];
    const int64_t sz = sizeof(T);
    // Column-major A / row-major B are read in place when a K-block of them is compact (no
    // TLB or cache-set trouble) or when they are reused too few times to repay a packing pass.
    const bool a_in_place =
        ker.in_place && a_rs == 1 && (kc * std::abs(a_cs) * sz <= kInPlaceSpan || N <= 2 * nr);
    const bool b_in_place =
        ker.in_place && b_cs == 1 && (kc * std::abs(b_rs) * sz <= kInPlaceSpan || M <= 2 * mr);
    const int nthr = team ? nt : 1;
    int64_t step = 0;

    for (int64_t j0 = 0; j0 < N; j0 += nc) {
      const int64_t ncur = std::min(nc, N - j0);
      const int64_t n_sl = ceil_div(ncur, nr);
      for (int64_t kb = 0; kb < n_kb; ++kb, ++step) {
        const int64_t p0 = kb * kc, kcur = std::min(kc, K - p0);
        const int64_t kpad = round_up(kcur, ker.kq);  // packed K (zero-padded)
        // A bias seeds C: the first K-block's products accumulate on top of it.
        const bool seed = kb == 0 && x.bias != nullptr, accumulate = kb > 0 || seed;
        P* bpack = bbuf + (step & 1) * nc * kc;  // double buffer: one barrier per step
        const T* Bk = B + p0 * b_rs + j0 * b_cs;
        if (b_in_place) {  // only a partial last sliver needs packing
          if (ncur % nr != 0 && tid == nthr - 1)
            ker.pack_b(bpack + (n_sl - 1) * nr * kpad, Bk + (n_sl - 1) * nr * b_cs, b_rs, b_cs,
                       static_cast<int>(ncur % nr), kcur);
        } else {  // each thread packs a contiguous range of slivers
          const int64_t s0 = n_sl * tid / nthr, s1 = n_sl * (tid + 1) / nthr;
          if (s1 > s0)
            ker.pack_b(bpack + s0 * nr * kpad, Bk + s0 * nr * b_cs, b_rs, b_cs,
                       static_cast<int>(std::min(ncur, s1 * nr) - s0 * nr), kcur);
        }
        if (team && !(b_in_place && ncur % nr == 0)) {
#pragma omp barrier
        }
        int64_t packed_ic = -1;
        for (int64_t t = tid; t < n_ic * n_js; t += nthr) {
          const int64_t ic = t / n_js, js = t % n_js;
          // Row blocks of whole slivers, as equal as they come (1024 rows in 6 blocks of 5 or
          // 6 slivers: 16 slivers per thread, where 192-row blocks gave 576 vs 448 rows).
          const int64_t i0 = ker.mr * (n_sliv * ic / n_ic);
          const int64_t mcur = std::min(M, ker.mr * (n_sliv * (ic + 1) / n_ic)) - i0;
          const T* Ak = A + i0 * a_rs + p0 * a_cs;
          if (ic != packed_ic) {
            for (int64_t ir = 0; ir < mcur; ir += mr) {
              const int m = static_cast<int>(std::min<int64_t>(mr, mcur - ir));
              if (a_in_place && m == mr) continue;
              ker.pack_a(apack + ir * kpad, Ak + ir * a_rs, a_rs, a_cs, m, kcur);
            }
            packed_ic = ic;
          }
          const int64_t s_begin = n_sl * js / n_js, s_end = n_sl * (js + 1) / n_js;
          auto tile = [&](int64_t s, int64_t ir) {
            const int64_t j = j0 + s * nr;
            const int n = static_cast<int>(std::min<int64_t>(nr, N - j));
            const bool bp_packed = !(b_in_place && n == nr);
            const P* bp = bp_packed ? bpack + s * nr * kpad : reinterpret_cast<const P*>(Bk + s * nr);
            const int64_t ldb = bp_packed ? nr : b_rs;
            const int m = static_cast<int>(std::min<int64_t>(mr, mcur - ir));
            const bool ap_packed = !(a_in_place && m == mr);
            const P* ap = ap_packed ? apack + ir * kpad : reinterpret_cast<const P*>(Ak + ir);
            const int64_t lda = ap_packed ? mr : a_cs;
            T* cp = C + (i0 + ir) * N + j;
            if (m == mr && n == nr) {
              if (seed)
                for (int i = 0; i < m; ++i) std::copy(x.bias + j, x.bias + j + n, cp + i * N);
              ker.ukernel(kpad, ap, lda, bp, ldb, cp, N, accumulate);
            } else {  // edge tile: the same kernel call on a scratch copy of the valid part
              for (int i = 0; i < m && accumulate; ++i) {
                const T* src = seed ? x.bias + j : cp + i * N;
                std::copy(src, src + n, tmp + i * nr);
              }
              ker.ukernel(kpad, ap, lda, bp, ldb, tmp, nr, accumulate);
              for (int i = 0; i < m; ++i) std::copy(tmp + i * nr, tmp + i * nr + n, cp + i * N);
            }
          };
          // The bfloat16 kernels keep one A sliver in L1 and stream the B panel from L2
          // whenever the sliver fits (K-blocks up to 512): AMX, 2 threads, 2048 x 384 x 1152
          // 1.3 -> 2.7 TFLOP/s, where with the B sliver in L1 some N (768, 1152, 1536) ran at
          // half speed. The float32 kernels measured the same either way and keep B in L1.
          const bool a_outer = ker.kq > 1 && ker.mr * kpad * int64_t(sizeof(P)) <= kBf16L1Sliver;
          if (a_outer) {
            for (int64_t ir = 0; ir < mcur; ir += mr)
              for (int64_t s = s_begin; s < s_end; ++s) tile(s, ir);
          } else {
            for (int64_t s = s_begin; s < s_end; ++s)
              for (int64_t ir = 0; ir < mcur; ir += mr) tile(s, ir);
          }
        }
      }
    }
    if (team) {  // the caller may reuse bbuf for the next item right away
#pragma omp barrier
    }
  }
};
template <typename T, typename P>
void matmul_impl(const MatmulArgs<T>& x, const Kernels<T, P>& ker) {
  if (x.batch == 0 || x.m == 0 || x.n == 0) return;
  if (x.k == 0) {
    for (int64_t row = 0; row < x.batch * x.m; ++row) {
      T* c = x.c + row * x.n;
      if (x.bias)
        std::copy(x.bias, x.bias + x.n, c);
      else
        std::fill(c, c + x.n, T(0));
    }
    return;
  }
  const int64_t work = x.m * x.n * x.k;  // multiply-adds per batch item
  constexpr int64_t kWorkPerThread = 1 << 18;
  // At least kWorkPerThread multiply-adds per thread (double: no overflow on huge sizes).
  const double per_thread = static_cast<double>(x.batch) * static_cast<double>(work) / kWorkPerThread;
  const int nthreads = static_cast<int>(std::max(1.0, std::min<double>(get_num_threads(), per_thread)));

  // Matrix-vector products (one or two rows of A, a wide row-major B): no packing, each C
  // row built across the columns (gemm_rows). Everything else, tiny problems included, takes
  // the blocked path (measured faster than a direct loop even at 16^3).
  if (ker.rows != nullptr && x.b_stride[2] == 1 && x.m <= 2 && x.n >= 64) {
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
    for (int64_t bi = 0; bi < x.batch; ++bi) {
      T* c = x.c + bi * x.m * x.n;
      ker.rows(x.m, x.n, x.k, x.a + bi * x.a_stride[0], x.a_stride[1], x.a_stride[2],
               x.b + bi * x.b_stride[0], x.b_stride[1], c, x.n);
      for (int64_t i = 0; i < x.m * x.n && x.bias; ++i) c[i] += x.bias[i % x.n];
    }
    return;
  }
  // Many batch items: one item per thread at a time (no barriers). Otherwise the whole
  // team works on each item in turn.
  const bool per_item = nthreads > 1 && x.batch >= nthreads &&
                        (x.batch % nthreads == 0 || x.batch >= 4 * nthreads);
  if (nthreads == 1 || per_item) {
    const Gemm<T, P> g(x, ker, 1);
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
      const int tid = thread_id(), nt = team_size();
      P* apack = static_cast<P*>(scratch(0, g.a_buffer_size() * sizeof(P)));
      P* bpack = static_cast<P*>(scratch(1, g.b_buffer_size() * sizeof(P)));
      if (ker.enter) ker.enter();
      // Contiguous ranges of items: each thread streams through its own part of A, B and C.
      const int64_t b0 = x.batch * tid / nt, b1 = x.batch * (tid + 1) / nt;
      for (int64_t bi = b0; bi < b1; ++bi) g.run_item(bi, bpack, apack, false);
      if (ker.leave) ker.leave();
    }
  } else {
    const Gemm<T, P> g(x, ker, nthreads);
    P* bpack = static_cast<P*>(scratch(1, g.b_buffer_size() * sizeof(P)));
#pragma omp parallel num_threads(nthreads)
    {
      P* apack = static_cast<P*>(scratch(0, g.a_buffer_size() * sizeof(P)));
      if (ker.enter) ker.enter();
      for (int64_t bi = 0; bi < x.batch; ++bi) g.run_item(bi, bpack, apack, true);
      if (ker.leave) ker.leave();
    }
  }
}

}  // namespace

MatmulBlocking matmul_blocking(int64_t k, bool f64) {
  k = std::max<int64_t>(k, 1);
  return f64 ? blocking(select_kernels(active_isa(), 0.0), k)
             : blocking(select_kernels(active_isa(), 0.0f), k);
}

void matmul(const MatmulArgs<float>& args) { matmul_impl(args, select_kernels(active_isa(), 0.0f)); }
void matmul(const MatmulArgs<double>& args) { matmul_impl(args, select_kernels(active_isa(), 0.0)); }

bool matmul_bf16(const MatmulArgs<float>& args) {
  const Kernels<float, uint16_t>* ker = select_bf16_kernels(active_bf16_path());
  if (ker == nullptr) return false;
  matmul_impl(args, *ker);
  return true;
}

}  // namespace pyzen
