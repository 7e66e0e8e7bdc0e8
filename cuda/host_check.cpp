// Runs the matmul (float32, float64, and bfloat16 on emulated tensor cores), reduction,
// softmax, elementwise and indexing kernels and Philox on the CPU (through host/cuda_runtime.h)
// against plain loops in double, over shapes and layouts that stress tile edges, strided
// and broadcast operands, nan and ties: a check of their indexing, edge handling and
// barriers on machines without a GPU (UBSan reports misaligned float4 accesses; ASan any
// access outside an array). About a minute on 2 cores; from the repository root:
//   g++ -std=c++20 -O1 -g -pthread -fsanitize=undefined,address -fno-sanitize-recover=all
//       -Wall -Wno-unknown-pragmas -Icuda/host -Icuda cuda/host_check.cpp -o /tmp/host_check
//   /tmp/host_check
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "elementwise_kernels.cuh"
#include "index_kernels.cuh"
#include "matmul_bf16_kernels.cuh"
#include "matmul_kernels.cuh"
#include "philox.cuh"
#include "reduce_kernels.cuh"
#include "sort_kernels.cuh"

using namespace pyzen::cuda;
using namespace pyzen::cuda::matmul_kernels;
using namespace pyzen::cuda::elementwise_kernels;
using namespace pyzen::cuda::index_kernels;
using namespace pyzen::cuda::reduce_kernels;

namespace {

// A (batch, rows, cols) operand stored transposed or not, with an optional leading pad
// that moves its base off 16-byte alignment.
struct Host {
  std::vector<float> data;
  std::int64_t s0, s1, sbatch, pad;
  float at(int b, int r, int c) const { return data[pad + b * sbatch + r * s0 + c * s1]; }
};

Host make(int batch, int rows, int cols, bool transposed, int pad, std::mt19937& rng) {
  std::normal_distribution<float> dist;
  Host h{std::vector<float>(pad + std::size_t(batch) * rows * cols), transposed ? 1 : cols, transposed ? rows : 1,
         std::int64_t(rows) * cols, pad};
  for (auto& v : h.data) v = dist(rng);
  return h;
}

// The largest error of c = a b relative to the sum of |products|, against double sums of
// the operands as `value` maps them.
template <typename Value>
double worst_error(const Host& a, const Host& b, const std::vector<float>& c, int batch, int M, int N, int K, Value value) {
  double worst = 0;
  for (int bt = 0; bt < batch; ++bt)
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double want = 0, scale = 0;
        for (int k = 0; k < K; ++k) {
          const double p = value(a.at(bt, i, k)) * value(b.at(bt, k, j));
          want += p;
          scale += std::fabs(p);
        }
        worst = std::fmax(worst, std::fabs(c[std::size_t(bt) * M * N + std::size_t(i) * N + j] - want) / (scale + 1e-30));
      }
  return worst;
}

int check(int batch, int M, int N, int K, bool ta, bool tb, int pad, std::mt19937& rng) {
  const Host a = make(batch, M, K, ta, pad, rng), b = make(batch, K, N, tb, pad, rng);
  std::vector<float> c(std::size_t(batch) * M * N + 4, -1.0f);
  const std::vector<std::int64_t> bshape{batch}, sa{a.sbatch}, sb{b.sbatch};
  const std::vector<std::int64_t>* s[2] = {&sa, &sb};
  const auto bix = make_indexer<2>(bshape, s);
  const Operand oa = make_operand(a.data.data() + a.pad, a.s0, a.s1, sa);
  const Operand ob = make_operand(b.data.data() + b.pad, b.s0, b.s1, sb);
  host_launch(sgemm_grid(M, N, batch), dim3(256), sgemm_kernel, M, N, K, oa, ob, c.data(), sgemm_vec_out(N, c.data()),
              std::int64_t(batch), bix);
  const double worst = worst_error(a, b, c, batch, M, N, K, [](float x) { return double(x); });
  const bool tail_intact = c[std::size_t(batch) * M * N] == -1.0f;
  const bool ok = worst < 1e-5 && tail_intact;
  std::printf("%s batch=%d M=%d N=%d K=%d ta=%d tb=%d pad=%d vec=(%d,%d) rel.err=%.2e%s\n", ok ? "ok  " : "FAIL", batch, M,
              N, K, ta, tb, pad, oa.vec, ob.vec, worst, tail_intact ? "" : " (wrote past the output)");
  return ok ? 0 : 1;
}

// The bfloat16 path: both packs (strided operands, K padded) then the tensor-core GEMM,
// against double sums of the operands rounded to bfloat16 (exact products, so only float32
// accumulation separates them).
int check_bf16(int batch, int M, int N, int K, bool ta, bool tb, std::mt19937& rng) {
  using namespace matmul_bf16_kernels;
  const Host a = make(batch, M, K, ta, 0, rng), b = make(batch, K, N, tb, 0, rng);
  const std::int64_t kp = (K + kStep - 1) / kStep * kStep;
  std::vector<std::uint16_t> ap(std::size_t(batch) * M * kp), bp(std::size_t(batch) * N * kp);
  const std::vector<std::int64_t> bshape{batch}, sa{a.sbatch}, sb{b.sbatch};
  const std::vector<std::int64_t>* s_a[1] = {&sa};
  const std::vector<std::int64_t>* s_b[1] = {&sb};
  host_launch(dim3(3), dim3(64), pack_bf16_kernel, std::int64_t(ap.size()), std::int64_t(M), std::int64_t(K), kp,
              a.data.data(), a.s0, a.s1, make_indexer<1>(bshape, s_a), ap.data());
  host_launch(dim3(3), dim3(64), pack_bf16_kernel, std::int64_t(bp.size()), std::int64_t(N), std::int64_t(K), kp,
              b.data.data(), b.s1, b.s0, make_indexer<1>(bshape, s_b), bp.data());  // b^T: rows are n
  std::vector<float> c(std::size_t(batch) * M * N + 4, -1.0f);
  host_launch(dim3((M + kTile - 1) / kTile, (N + kTile - 1) / kTile, batch), dim3(kBlock), matmul_bf16_kernel, M, N,
              int(kp), ap.data(), bp.data(), c.data(), std::int64_t(batch));
  const double worst = worst_error(a, b, c, batch, M, N, K, [](float x) { return double(bf16_float(bf16_bits(x))); });
  const bool tail_intact = c[std::size_t(batch) * M * N] == -1.0f;
  const bool ok = worst < 1e-5 && tail_intact;
  std::printf("%s bf16 batch=%d M=%d N=%d K=%d ta=%d tb=%d rel.err=%.2e%s\n", ok ? "ok  " : "FAIL", batch, M, N, K, ta, tb,
              worst, tail_intact ? "" : " (wrote past the output)");
  return ok ? 0 : 1;
}

// argsort of rows x n values through the keys, the bitonic sort and the write-out, against
// std::stable_sort with NumPy's order (NaN last and all alike, -0.0 equal to 0.0).
template <typename T>
int check_argsort(int rows, int n, const std::vector<T>& pool, std::mt19937& rng) {
  using namespace sort_kernels;
  std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
  const std::int64_t total = std::int64_t(rows) * n;
  std::unique_ptr<T[]> x(new T[total]);  // not a vector: vector<bool> has no data()
  for (std::int64_t i = 0; i < total; ++i) x[i] = pool[pick(rng)];
  std::int64_t n_pow2 = 1;
  while (n_pow2 < total) n_pow2 <<= 1;
  std::vector<ArgKey> keys(n_pow2);
  std::vector<std::int64_t> out(total + 1, -7);
  host_launch(dim3(2), dim3(64), argsort_keys_kernel<T>, total, n_pow2, std::int64_t(n), x.get(), keys.data());
  for_each_bitonic_step(n_pow2, [&](std::int64_t j, std::int64_t size) {
    host_launch(dim3(2), dim3(64), bitonic_step_kernel<ArgKey>, n_pow2, keys.data(), j, size);
  });
  host_launch(dim3(2), dim3(64), argsort_out_kernel<ArgKey>, total, keys.data(), out.data());
  auto before = [](T a, T b) {  // NumPy's order
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(a)) return false;
      if (std::isnan(b)) return true;
    }
    return a < b;
  };
  bool ok = out.back() == -7;
  for (int r = 0; r < rows; ++r) {
    std::vector<std::int64_t> want(n);
    std::iota(want.begin(), want.end(), 0);
    const T* row = &x[std::size_t(r) * n];
    std::stable_sort(want.begin(), want.end(), [&](std::int64_t a, std::int64_t b) { return before(row[a], row[b]); });
    ok = ok && std::equal(want.begin(), want.end(), out.begin() + std::size_t(r) * n);
  }
  std::printf("%s argsort %s rows=%d n=%d\n", ok ? "ok  " : "FAIL", sizeof(T) == 8 ? "64-bit" : sizeof(T) == 4 ? "float32" : "bool", rows, n);
  return ok ? 0 : 1;
}

int check_dgemm(int M, int N, int K, bool ta, std::mt19937& rng) {
  std::normal_distribution<double> dist;
  std::vector<double> a(std::size_t(M) * K), b(std::size_t(K) * N), c(std::size_t(M) * N);
  for (auto& v : a) v = dist(rng);
  for (auto& v : b) v = dist(rng);
  const std::int64_t sam = ta ? 1 : K, sak = ta ? M : 1;
  const std::vector<std::int64_t> none;
  const std::vector<std::int64_t>* s[2] = {&none, &none};
  const dim3 grid((N + TS - 1) / TS, (M + TS - 1) / TS, 1);
  host_launch(grid, dim3(TS, TS), gemm_tiled_kernel<double>, M, N, K, a.data(), sam, sak, b.data(), std::int64_t(N),
              std::int64_t(1), c.data(), std::int64_t(1), make_indexer<2>(none, s));
  double worst = 0;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double want = 0;
      for (int k = 0; k < K; ++k) want += a[i * sam + k * sak] * b[std::size_t(k) * N + j];
      worst = std::fmax(worst, std::fabs(c[std::size_t(i) * N + j] - want));
    }
  const bool ok = worst < 1e-12;
  std::printf("%s dgemm M=%d N=%d K=%d ta=%d err=%.2e\n", ok ? "ok  " : "FAIL", M, N, K, ta, worst);
  return ok ? 0 : 1;
}

// Reduces the last two dims of a transposed (strided) 3-D view: sum, max, argmax, argmin
// with a tie and a nan planted, and cumsum along the last dim.
int check_reductions(std::mt19937& rng) {
  const int d0 = 5, d1 = 300, d2 = 7;  // x viewed as (d0, d2, d1): strides (d1*d2, 1, d2)
  std::normal_distribution<double> dist;
  std::vector<double> x(std::size_t(d0) * d1 * d2);
  for (auto& v : x) v = dist(rng);
  auto at = [&](int i, int j, int k) { return x[std::size_t(i) * d1 * d2 + std::size_t(k) * d2 + j]; };
  x[std::size_t(1) * d1 * d2 + 10 * d2 + 3] = 50.0;  // row 1: max at (j=3, k=10), tied at (j=4, k=2)
  x[std::size_t(1) * d1 * d2 + 2 * d2 + 4] = 50.0;
  x[std::size_t(2) * d1 * d2 + 7 * d2 + 5] = NAN;    // row 2: nan wins max and argmax
  const std::vector<std::int64_t> outer_shape{d0}, outer_strides{std::int64_t(d1) * d2};
  const std::vector<std::int64_t> inner_shape{d2, d1}, inner_strides{1, d2};
  const std::vector<std::int64_t>* so[1] = {&outer_strides};
  const std::vector<std::int64_t>* si[1] = {&inner_strides};
  const auto outer = make_indexer<1>(outer_shape, so), inner = make_indexer<1>(inner_shape, si);
  std::vector<double> sum(d0), mx(d0);
  std::vector<std::int64_t> amax(d0), amin(d0);
  const std::int64_t r = std::int64_t(d1) * d2;
  host_launch(dim3(2), dim3(kThreads), reduce_kernel<double, SumOp<double>>, std::int64_t(d0), r, sum.data(), x.data(), outer, inner);
  host_launch(dim3(2), dim3(kThreads), reduce_kernel<double, MaxOp<double>>, std::int64_t(d0), r, mx.data(), x.data(), outer, inner);
  host_launch(dim3(3), dim3(kThreads), arg_kernel<double>, true, std::int64_t(d0), r, amax.data(), x.data(), outer, inner);
  host_launch(dim3(3), dim3(kThreads), arg_kernel<double>, false, std::int64_t(d0), r, amin.data(), x.data(), outer, inner);
  int failures = 0;
  for (int i = 0; i < d0; ++i) {
    double s = 0, m = -INFINITY, lo = INFINITY;
    std::int64_t im = -1, il = -1;
    bool nan = false;
    for (int j = 0; j < d2; ++j)
      for (int k = 0; k < d1; ++k) {
        const double v = at(i, j, k);
        const std::int64_t flat = std::int64_t(j) * d1 + k;
        s += v;
        if (std::isnan(v)) {
          if (!nan) im = il = flat;
          nan = true;
        }
        if (!nan && v > m) m = v, im = flat;
        if (!nan && v < lo) lo = v, il = flat;
      }
    const bool sum_ok = nan ? std::isnan(sum[i]) : std::fabs(sum[i] - s) < 1e-9;
    const bool ok = sum_ok && (nan ? std::isnan(mx[i]) : mx[i] == m) && amax[i] == im && amin[i] == il;
    if (!ok) std::printf("FAIL reduce row %d: sum %g/%g max %g/%g argmax %lld/%lld argmin %lld/%lld\n", i, sum[i], s, mx[i], m,
                         (long long)amax[i], (long long)im, (long long)amin[i], (long long)il);
    failures += !ok;
  }
  std::vector<double> cs(std::size_t(d0) * d2 * d1);  // cumsum along d1 of the (d0, d2, d1) view
  const std::vector<std::int64_t> rows_shape{d0, d2}, rows_strides{std::int64_t(d1) * d2, 1};
  const std::vector<std::int64_t>* sr[1] = {&rows_strides};
  host_launch(dim3(1), dim3(kThreads), cumulative_kernel<double>, false, std::int64_t(d0) * d2, std::int64_t(d1), cs.data(),
              x.data(), make_indexer<1>(rows_shape, sr), std::int64_t(d2));
  for (int i = 0; i < d0; ++i)
    for (int j = 0; j < d2; ++j) {
      double acc = 0;
      for (int k = 0; k < d1; ++k) {
        acc += at(i, j, k);
        const double got = cs[(std::size_t(i) * d2 + j) * d1 + k];
        if (!(std::fabs(got - acc) < 1e-9) && !(std::isnan(got) && std::isnan(acc))) {
          std::printf("FAIL cumsum (%d, %d, %d)\n", i, j, k);
          return failures + 1;
        }
      }
    }
  std::printf("%s reductions (sum, max, argmax, argmin with a tie and a nan, cumsum) on a strided view\n",
              failures ? "FAIL" : "ok  ");
  return failures;
}

int check_softmax(int rows, int c, std::mt19937& rng) {
  std::normal_distribution<double> dist;
  std::vector<double> x(std::size_t(rows) * c), y(x.size()), ly(x.size()), g(x.size()), dx(x.size()), dlx(x.size());
  for (auto& v : x) v = 3 * dist(rng);
  for (auto& v : g) v = dist(rng);
  x[0] = -INFINITY;
  host_launch(dim3(2), dim3(kThreads), softmax_kernel<double>, false, std::int64_t(rows), std::int64_t(c), y.data(), x.data());
  host_launch(dim3(2), dim3(kThreads), softmax_kernel<double>, true, std::int64_t(rows), std::int64_t(c), ly.data(), x.data());
  host_launch(dim3(3), dim3(kThreads), softmax_backward_kernel<double>, false, std::int64_t(rows), std::int64_t(c), dx.data(),
              g.data(), y.data());
  host_launch(dim3(3), dim3(kThreads), softmax_backward_kernel<double>, true, std::int64_t(rows), std::int64_t(c), dlx.data(),
              g.data(), ly.data());
  double worst = 0;
  for (int i = 0; i < rows; ++i) {
    const double* xr = &x[std::size_t(i) * c];
    double m = -INFINITY, s = 0, gy = 0, gs = 0;
    for (int j = 0; j < c; ++j) m = std::fmax(m, xr[j]);
    for (int j = 0; j < c; ++j) s += std::exp(xr[j] - m);
    for (int j = 0; j < c; ++j) {
      const double p = std::exp(xr[j] - m) / s;
      gy += g[std::size_t(i) * c + j] * p;
      gs += g[std::size_t(i) * c + j];
    }
    for (int j = 0; j < c; ++j) {
      const std::size_t k = std::size_t(i) * c + j;
      const double p = std::exp(xr[j] - m) / s;
      worst = std::fmax(worst, std::fabs(y[k] - p));
      if (std::isfinite(xr[j])) worst = std::fmax(worst, std::fabs(ly[k] - (xr[j] - m - std::log(s))));
      worst = std::fmax(worst, std::fabs(dx[k] - p * (g[k] - gy)));
      worst = std::fmax(worst, std::fabs(dlx[k] - (g[k] - p * gs)));
    }
  }
  const bool ok = worst < 1e-12;
  std::printf("%s softmax / log_softmax forward and backward rows=%d c=%d err=%.2e\n", ok ? "ok  " : "FAIL", rows, c, worst);
  return ok ? 0 : 1;
}

// Random123's known-answer vectors for Philox4x32-10 (counter words, key words, output).
int check_philox() {
  const std::uint32_t kat[][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  int failures = 0;
  for (const auto& v : kat) {
    const U4 r = philox(v[0] | std::uint64_t(v[1]) << 32, v[2] | std::uint64_t(v[3]) << 32, v[4] | std::uint64_t(v[5]) << 32);
    const bool ok = r.x == v[6] && r.y == v[7] && r.z == v[8] && r.w == v[9];
    std::printf("%s philox4x32-10 KAT ctr=%08x.. -> %08x %08x %08x %08x\n", ok ? "ok  " : "FAIL", v[0], r.x, r.y, r.z, r.w);
    failures += !ok;
  }
  return failures;
}

template <int N>
Indexer<N> indexer(const std::vector<std::int64_t>& shape, const std::vector<std::vector<std::int64_t>>& strides) {
  const std::vector<std::int64_t>* s[N];
  for (int a = 0; a < N; ++a) s[a] = &strides[a];
  return make_indexer<N>(shape, s);
}

// Broadcast and transposed operands of binary ops, a flipped copy, where; take, gather and
// scatter-add with negative, repeated and out-of-range indices.
int check_elementwise_and_indexing() {
  int failures = 0;
  auto report = [&](bool ok, const char* what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    failures += !ok;
  };
  std::vector<double> a(15), b(20), out(60);  // a: (3, 1, 5) broadcast; b: (5, 4) seen as (3, 4, 5) transposed
  for (int i = 0; i < 15; ++i) a[i] = i * 0.5 - 3;
  for (int i = 0; i < 20; ++i) b[i] = 7 - i;
  const auto ix3 = indexer<3>({3, 4, 5}, {{20, 5, 1}, {5, 0, 1}, {0, 1, 4}});
  host_launch(dim3(2), dim3(16), binary_kernel<double, double>, Binary::add, std::int64_t(60), out.data(), a.data(), b.data(), ix3);
  bool lt[60];
  host_launch(dim3(1), dim3(32), binary_kernel<double, bool>, Binary::lt, std::int64_t(60), lt, a.data(), b.data(), ix3);
  bool ok = true;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k) {
        const double x = a[i * 5 + k], y = b[k * 4 + j];
        ok = ok && out[i * 20 + j * 5 + k] == x + y && lt[i * 20 + j * 5 + k] == (x < y);
      }
  report(ok, "binary add and less over broadcast and transposed operands");

  std::vector<double> src(24), dst(24);  // dst (4, 6) = src (4, 6) flipped along dim 1 (negative stride)
  for (int i = 0; i < 24; ++i) src[i] = i;
  host_launch(dim3(3), dim3(8), copy_kernel<double, double>, std::int64_t(24), dst.data(), src.data() + 5,
              indexer<2>({4, 6}, {{6, 1}, {6, -1}}));
  ok = true;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) ok = ok && dst[i * 6 + j] == src[i * 6 + 5 - j];
  report(ok, "copy of a flipped (negative-stride) view");

  bool cond[4] = {true, false, false, true};
  std::vector<double> w(12);  // where(cond (4, 1) broadcast, a (4, 3), scalar 0-d -1)
  const double minus_one = -1;
  host_launch(dim3(1), dim3(32), where_kernel<double>, std::int64_t(12), w.data(), cond, src.data(), &minus_one,
              indexer<4>({4, 3}, {{3, 1}, {1, 0}, {3, 1}, {0, 0}}));
  ok = true;
  for (int i = 0; i < 12; ++i) ok = ok && w[i] == (cond[i / 3] ? src[i] : -1.0);
  report(ok, "where with a broadcast condition and a 0-d operand");

  // take along axis 1 of x (2, 5, 3) with index {4, -1, 0, 7}: 7 is out of range and gives 0.
  std::vector<double> x(30), taken(24);
  for (int i = 0; i < 30; ++i) x[i] = i + 1;
  const std::int64_t idx[4] = {4, -1, 0, 7};
  host_launch(dim3(2), dim3(8), take_kernel<double>, std::int64_t(24), std::int64_t(4), std::int64_t(3), taken.data(), x.data(),
              idx, std::int64_t(5), std::int64_t(3), indexer<1>({2}, {{15}}), indexer<1>({3}, {{1}}));
  ok = true;
  for (int o = 0; o < 2; ++o)
    for (int l = 0; l < 4; ++l)
      for (int q = 0; q < 3; ++q) {
        const std::int64_t k = idx[l] < 0 ? idx[l] + 5 : idx[l];
        ok = ok && taken[(o * 4 + l) * 3 + q] == (k < 5 ? x[o * 15 + k * 3 + q] : 0.0);
      }
  report(ok, "take with negative and out-of-range indices");

  // gather along axis 1 of x (5, 6) viewed from the first 30 elements, index (5, 2)
  const std::int64_t gidx[10] = {0, 5, -1, 2, 3, 3, 1, 0, 4, -6};
  std::vector<double> g(10);
  host_launch(dim3(1), dim3(8), gather_kernel<double>, std::int64_t(10), g.data(), x.data(), gidx, std::int64_t(6),
              std::int64_t(1), indexer<2>({5, 2}, {{2, 1}, {6, 0}}));
  ok = true;
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 2; ++j) {
      const std::int64_t k = gidx[i * 2 + j] < 0 ? gidx[i * 2 + j] + 6 : gidx[i * 2 + j];
      ok = ok && g[i * 2 + j] == x[i * 6 + k];
    }
  report(ok, "gather (take_along_axis) with negative indices");

  // scatter-add rows of values (6, 3) into out (4, 3) along axis 0, repeated rows and one out of range
  const std::int64_t sidx[6] = {1, 3, 1, 1, 9, -1};
  std::vector<double> vals(18), acc(12, 0.0), want(12, 0.0);
  for (int i = 0; i < 18; ++i) vals[i] = i * 0.25;
  host_launch(dim3(2), dim3(4), scatter_kernel<double>, true, std::int64_t(18), acc.data(), sidx, vals.data(), std::int64_t(4),
              std::int64_t(3), indexer<3>({6, 3}, {{1, 0}, {3, 1}, {0, 1}}));
  for (int r = 0; r < 6; ++r) {
    const std::int64_t k = sidx[r] < 0 ? sidx[r] + 4 : sidx[r];
    if (k < 4)
      for (int c = 0; c < 3; ++c) want[k * 3 + c] += vals[r * 3 + c];
  }
  report(acc == want, "scatter-add with repeated, negative and out-of-range indices");
  return failures;
}

}  // namespace

int main() {
  std::mt19937 rng(0);
  int failures = 0;
  const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {128, 128, 8}, {129, 131, 9}, {130, 260, 17}, {64, 4, 33}, {5, 257, 12}};
  const int batch_pad[][2] = {{1, 0}, {3, 0}, {2, 1}};  // pad 1 moves the base off 16-byte alignment
  for (const auto& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (const auto& bp : batch_pad) failures += check(bp[0], s[0], s[1], s[2], ta, tb, bp[1], rng);
  for (int ta = 0; ta < 2; ++ta) failures += check_dgemm(33, 17, 40, ta, rng);
  const int bf16_shapes[][4] = {{1, 1, 1, 1}, {1, 130, 70, 45}, {2, 17, 129, 64}, {1, 128, 128, 96}};
  for (const auto& s : bf16_shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) failures += check_bf16(s[0], s[1], s[2], s[3], ta, tb, rng);
  const std::vector<float> fpool = {1.5f, -2.0f, 0.0f, -0.0f, NAN, -NAN, INFINITY, -INFINITY, 3.0f, 1e-40f, -1e-40f, 7.0f};
  const std::vector<double> dpool = {1.5, -2.0, 0.0, -0.0, NAN, INFINITY, -INFINITY, 3.0, 1e-310, -7.25};
  const std::vector<std::int64_t> ipool = {0, -1, 1, INT64_MIN, INT64_MAX, 5, -5};
  failures += check_argsort<float>(3, 37, fpool, rng) + check_argsort<float>(1, 1, fpool, rng) + check_argsort<float>(2, 64, fpool, rng);
  failures += check_argsort<double>(4, 20, dpool, rng) + check_argsort<std::int64_t>(3, 33, ipool, rng);
  failures += check_argsort<bool>(2, 17, {true, false}, rng);
  failures += check_philox();
  failures += check_elementwise_and_indexing();
  failures += check_reductions(rng);
  failures += check_softmax(5, 1000, rng);
  failures += check_softmax(3, 7, rng);
  std::printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
