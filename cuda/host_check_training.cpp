// Runs the training kernels (layer norm, multi-tensor AdamW, cross-entropy, flash attention
// in float32 and on bfloat16 tensor-core fragments, embedding backward) on the CPU through
// host/cuda_runtime.h against plain loops in double: odd row lengths (tails of the
// 256-thread loops), rows far from zero mean, nan rows, several row partitions, mixed
// tensor sizes and every AdamW variant, ignored, out-of-range and -inf targets, attention
// lengths that end inside a tile, causal or not, Tq != Tk, Tk = 0; embedding indices that
// repeat, wrap or fall out of range, against a sequential sum bit for bit. A check of
// indexing, barriers, fragment layouts and arithmetic without a GPU (ASan: out-of-bounds
// accesses; UBSan: misaligned or overflowing ones). About 20 s on 2 cores; from the
// repository root:
//   g++ -std=c++20 -O1 -g -pthread -fsanitize=undefined,address -fno-sanitize-recover=all
//       -Wall -Wno-unknown-pragmas -Icuda/host -Icuda cuda/host_check_training.cpp -o /tmp/host_check_training
//   /tmp/host_check_training
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "adamw_kernels.cuh"
#include "attention_bf16_kernels.cuh"
#include "attention_kernels.cuh"
#include "cross_entropy_kernels.cuh"
#include "embedding_kernels.cuh"
#include "foreach_kernels.cuh"
#include "layer_norm_kernels.cuh"

using namespace pyzen::cuda;

namespace {

double rel_err(double got, double want, double scale) { return std::fabs(got - want) / (std::fabs(want) + scale); }

// worst = max(worst, err), where a nan err (a nan result where a number was due) is the worst.
void bump(double& worst, double err) { worst = std::isnan(err) ? INFINITY : std::fmax(worst, err); }

// rows x c float32 with the given mean offset; row `nan_row` (if >= 0) holds a nan.
int check_layer_norm(int rows, int c, float offset, int nan_row, bool affine, std::mt19937& rng) {
  using namespace layer_norm_kernels;
  std::normal_distribution<float> dist;
  std::vector<float> x(std::size_t(rows) * c), g(x.size()), w(c), b(c);
  for (auto& v : x) v = offset + dist(rng);
  for (auto& v : g) v = dist(rng);
  for (auto& v : w) v = 1.0f + 0.5f * dist(rng);
  for (auto& v : b) v = dist(rng);
  if (nan_row >= 0) x[std::size_t(nan_row) * c + c / 2] = NAN;
  const float* wp = affine ? w.data() : nullptr;
  const float eps = 1e-5f;
  std::vector<float> out(x.size() + 1, -7.0f), mean(rows), rstd(rows);
  host_launch(dim3(rows < 3 ? rows : 3), dim3(kThreads), layer_norm_forward_kernel<float>, std::int64_t(rows),
              std::int64_t(c), double(eps), x.data(), wp, affine ? b.data() : nullptr, out.data(), mean.data(),
              rstd.data());
  const std::int64_t parts = backward_parts(rows) < 4 ? backward_parts(rows) : 4;
  std::vector<float> dx(x.size() + 1, -7.0f), pdw(parts * c, 0.0f), pdb(parts * c, 0.0f), dw(c), db(c);
  host_launch(dim3(unsigned(parts)), dim3(kThreads), layer_norm_backward_kernel<float>, std::int64_t(rows),
              std::int64_t(c), g.data(), x.data(), wp, mean.data(), rstd.data(), dx.data(), pdw.data(), pdb.data());
  host_launch(dim3(2), dim3(64), column_sum_kernel<float>, parts, std::int64_t(c), pdw.data(), dw.data());
  host_launch(dim3(2), dim3(64), column_sum_kernel<float>, parts, std::int64_t(c), pdb.data(), db.data());
  double worst = 0;
  bool nan_ok = true;
  std::vector<double> rdw(c, 0.0), rdb(c, 0.0);
  for (int r = 0; r < rows; ++r) {
    const float* xr = &x[std::size_t(r) * c];
    const float* gr = &g[std::size_t(r) * c];
    double mu = 0, var = 0;
    for (int j = 0; j < c; ++j) mu += xr[j];
    mu /= c;
    for (int j = 0; j < c; ++j) var += (xr[j] - mu) * (xr[j] - mu);
    const double rs = 1.0 / std::sqrt(var / c + eps);
    if (r == nan_row) {
      nan_ok = nan_ok && std::isnan(mean[r]) && std::isnan(out[std::size_t(r) * c]) && std::isnan(dx[std::size_t(r) * c]);
      continue;
    }
    bump(worst, rel_err(mean[r], mu, 1e-3 + std::fabs(offset)) + rel_err(rstd[r], rs, 0));
    double sa = 0, sb = 0;
    for (int j = 0; j < c; ++j) {
      const double xh = (xr[j] - mu) * rs, gw = affine ? double(gr[j]) * w[j] : gr[j];
      const double y = affine ? xh * w[j] + b[j] : xh;
      bump(worst, rel_err(out[std::size_t(r) * c + j], y, 1.0));
      sa += gw;
      sb += gw * xh;
      rdw[j] += gr[j] * xh;
      rdb[j] += gr[j];
    }
    for (int j = 0; j < c; ++j) {
      const double xh = (xr[j] - mu) * rs, gw = affine ? double(gr[j]) * w[j] : gr[j];
      bump(worst, rel_err(dx[std::size_t(r) * c + j], rs * (gw - sa / c - xh * sb / c), rs));
    }
  }
  if (nan_row < 0)
    for (int j = 0; j < c; ++j)
      bump(worst, rel_err(dw[j], rdw[j], std::sqrt(double(rows))) + rel_err(db[j], rdb[j], std::sqrt(double(rows))));
  const bool tails = out.back() == -7.0f && dx.back() == -7.0f;
  const bool ok = worst < 1e-4 && nan_ok && tails;
  std::printf("%s layer_norm rows=%d C=%d offset=%g nan_row=%d affine=%d parts=%lld rel.err=%.2e%s%s\n", ok ? "ok  " : "FAIL",
              rows, c, double(offset), nan_row, affine, (long long)parts, worst, nan_ok ? "" : " (nan row)",
              tails ? "" : " (wrote past the output)");
  return ok ? 0 : 1;
}

// Three steps over tensors of mixed sizes (a chunk boundary, a tail, one element) and
// steps, against the update in double; float32 state, compared with a float32 tolerance.
int check_adamw(bool decay, bool decoupled, bool maximize, bool amsgrad, std::mt19937& rng) {
  using namespace adamw_kernels;
  std::vector<std::int64_t> sizes = {kChunk + 3, 1, 0, 2 * kChunk, 37};
  if (amsgrad) sizes.resize(sizes.size() + 2 * kMaxEntries<Entry<float>>, 3);  // several launches
  const double lr = 1e-2, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = decay ? 0.1 : 0.0;
  std::normal_distribution<float> dist;
  struct T {
    std::vector<float> p, g, m, v, vmax;
    std::vector<double> rp, rm, rv, rvmax;
    int step;
  };
  std::vector<T> ts;
  for (std::int64_t n : sizes) {
    T t{std::vector<float>(n), std::vector<float>(n), std::vector<float>(n, 0.0f), std::vector<float>(n, 0.0f),
        std::vector<float>(n, 0.0f), {}, std::vector<double>(n, 0.0), std::vector<double>(n, 0.0),
        std::vector<double>(n, 0.0), int(ts.size())};
    for (auto& v : t.p) v = dist(rng);
    t.rp.assign(t.p.begin(), t.p.end());
    ts.push_back(std::move(t));
  }
  double worst = 0;
  for (int it = 0; it < 3; ++it) {
    std::vector<Entry<float>> entries;
    for (auto& t : ts) {
      for (auto& v : t.g) v = dist(rng);
      ++t.step;
      entries.push_back({t.p.data(), t.g.data(), t.m.data(), t.v.data(), amsgrad ? t.vmax.data() : nullptr,
                         std::int64_t(t.p.size()), 0, make_coef<float>(lr, b1, b2, eps, wd, t.step)});
      for (std::size_t i = 0; i < t.p.size(); ++i) {
        double g = maximize ? -double(t.g[i]) : t.g[i];
        if (decay && decoupled) t.rp[i] *= 1 - lr * wd;
        else if (decay) g += wd * t.rp[i];
        t.rm[i] = b1 * t.rm[i] + (1 - b1) * g;
        t.rv[i] = b2 * t.rv[i] + (1 - b2) * g * g;
        t.rvmax[i] = std::fmax(t.rvmax[i], t.rv[i]);
        const double denom = std::sqrt(amsgrad ? t.rvmax[i] : t.rv[i]) / std::sqrt(1 - std::pow(b2, t.step)) + eps;
        t.rp[i] -= lr / (1 - std::pow(b1, t.step)) * t.rm[i] / denom;
      }
    }
    for_each_table(entries, [&](const Table<Entry<float>>& table) {
      host_launch(dim3(3), dim3(kThreads), adamw_kernel<float>, table, Flags{decay, decoupled, maximize});
    });
  }
  for (const auto& t : ts)
    for (std::size_t i = 0; i < t.p.size(); ++i)
      bump(worst, std::fabs(t.p[i] - t.rp[i]) + std::fabs(t.m[i] - t.rm[i]));
  const bool ok = worst < 1e-5;
  std::printf("%s adamw decay=%d decoupled=%d maximize=%d amsgrad=%d abs.err=%.2e\n", ok ? "ok  " : "FAIL", decay, decoupled,
              maximize, amsgrad, worst);
  return ok ? 0 : 1;
}

// Rows: ordinary, ignored, out of range, a -inf logit, a nan logit, large logits (the
// backward's recomputed shift), each with and without label smoothing.
int check_cross_entropy(int c, double smoothing, std::mt19937& rng) {
  using namespace cross_entropy_kernels;
  const int rows = 7;
  const std::int64_t ignore = -100;
  std::normal_distribution<float> dist;
  std::vector<float> x(std::size_t(rows) * c), g(rows);
  for (auto& v : x) v = 3 * dist(rng);
  for (auto& v : g) v = dist(rng);
  std::vector<std::int64_t> t(rows);
  for (int r = 0; r < rows; ++r) t[r] = (r * 37) % c;
  t[1] = ignore;
  t[2] = c;
  if (c > 1) x[3 * std::size_t(c) + (t[3] + 1) % c] = -INFINITY;
  x[4 * std::size_t(c) + c / 2] = NAN;
  for (int j = 0; j < c; ++j) x[5 * std::size_t(c) + j] += 3e4f;
  std::vector<float> loss(rows), lse(rows), d(x.size() + 1, -7.0f);
  host_launch(dim3(3), dim3(kThreads), cross_entropy_forward_kernel<float>, std::int64_t(rows), std::int64_t(c), x.data(),
              t.data(), ignore, smoothing, loss.data(), lse.data());
  host_launch(dim3(2), dim3(kThreads), cross_entropy_backward_kernel<float>, std::int64_t(rows), std::int64_t(c), g.data(),
              x.data(), t.data(), lse.data(), ignore, smoothing, d.data());
  double worst = 0;
  bool special_ok = true;
  for (int r = 0; r < rows; ++r) {
    const float* xr = &x[std::size_t(r) * c];
    const float* dr = &d[std::size_t(r) * c];
    double m = -INFINITY, s = 0, sx = 0;
    for (int j = 0; j < c; ++j) m = std::fmax(m, xr[j]);
    for (int j = 0; j < c; ++j) s += std::exp(double(xr[j]) - m), sx += xr[j];
    const double l = m + std::log(s);
    if (r == 1) {
      special_ok = special_ok && loss[r] == 0.0f && dr[0] == 0.0f && dr[c - 1] == 0.0f;
      continue;
    }
    if (r == 2 || r == 4) {
      special_ok = special_ok && std::isnan(loss[r]) && std::isnan(dr[0]) && std::isnan(dr[c - 1]);
      continue;
    }
    // With smoothing, the -inf logit makes the mean of the row -inf and the loss inf.
    const double want = (1 - smoothing) * (l - xr[t[r]]) + (smoothing ? smoothing * (l - sx / c) : 0.0);
    bump(worst, rel_err(lse[r], l, 1.0) + (std::isinf(want) ? (loss[r] == want ? 0.0 : NAN) : rel_err(loss[r], want, 1.0)));
    for (int j = 0; j < c; ++j) {
      const double p = std::exp(double(xr[j]) - l);
      const double dw = (p - (j == t[r] ? 1 - smoothing : 0) - smoothing / c) * g[r];
      bump(worst, std::fabs(dr[j] - dw) / (std::fabs(g[r]) + 1e-30) * 1e-1);
    }
  }
  const bool ok = worst < 1e-5 && special_ok && d.back() == -7.0f;
  std::printf("%s cross_entropy C=%d smoothing=%g err=%.2e%s\n", ok ? "ok  " : "FAIL", c, smoothing, worst,
              special_ok ? "" : " (ignored / bad / nan rows)");
  return ok ? 0 : 1;
}

// Flash attention forward and backward for bh (batch, head) pairs against the plain
// softmax(q k^T s) v and its gradients in double: the float32 kernels, or with BF16 the
// tensor-core kernels, whose reference takes q, k, v and g rounded to bfloat16.
template <int D, bool BF16>
int check_attention(int bh, int tq, int tk, bool causal, std::mt19937& rng) {
  std::normal_distribution<float> dist;
  const std::size_t nq = std::size_t(bh) * tq * D, nk = std::size_t(bh) * tk * D;
  std::vector<float> q(nq), k(nk), v(nk), g(nq), out(nq + 1, -7.0f), lse(std::size_t(bh) * tq), delta(lse.size());
  std::vector<float> dq(nq + 1, -7.0f), dk(nk + 1, -7.0f), dv(nk + 1, -7.0f);
  std::vector<std::uint16_t> qb(nq), kb(nk), vb(nk), gb(nq);
  for (auto* a : {&q, &k, &v, &g})
    for (auto& x : *a) x = dist(rng);
  const attention_kernels::Dims s{tq, tk, float(1.0 / std::sqrt(double(D))), causal};
  if (BF16) {
    auto round = [](std::vector<float>& x, std::vector<std::uint16_t>& bits) {  // through the device conversion kernel
      if (x.empty()) return;
      host_launch(dim3(2), dim3(64), attention_bf16_kernels::to_bf16_kernel, std::int64_t(x.size()), x.data(), bits.data());
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = bf16_float(bits[i]);
    };
    round(q, qb), round(k, kb), round(v, vb), round(g, gb);
  }
  const int rows = BF16 ? attention_bf16_kernels::kRows : attention_kernels::kRows;
  const unsigned qtiles = unsigned((tq + rows - 1) / rows), ktiles = unsigned((tk + rows - 1) / rows);
  if (qtiles) {
    if (BF16)
      host_launch(dim3(qtiles, bh), dim3(attention_bf16_kernels::kBlock), attention_bf16_kernels::attention_bf16_forward_kernel<D>,
                  s, qb.data(), kb.data(), vb.data(), out.data(), lse.data());
    else
      host_launch(dim3(qtiles, bh), dim3(attention_kernels::kBlock), attention_kernels::attention_forward_kernel<D>, s, q.data(),
                  k.data(), v.data(), out.data(), lse.data());
    if (BF16)
      host_launch(dim3(2), dim3(64), attention_kernels::attention_delta_kernel<std::uint16_t>, std::int64_t(bh) * tq, D,
                  gb.data(), out.data(), delta.data());
    else
      host_launch(dim3(2), dim3(64), attention_kernels::attention_delta_kernel<float>, std::int64_t(bh) * tq, D, g.data(),
                  out.data(), delta.data());
    if (BF16)
      host_launch(dim3(qtiles, bh), dim3(attention_bf16_kernels::kBlock), attention_bf16_kernels::attention_bf16_dq_kernel<D>, s,
                  gb.data(), qb.data(), kb.data(), vb.data(), lse.data(), delta.data(), dq.data());
    else
      host_launch(dim3(qtiles, bh), dim3(attention_kernels::kBlock), attention_kernels::attention_dq_kernel<D>, s, g.data(),
                  q.data(), k.data(), v.data(), lse.data(), delta.data(), dq.data());
  }
  if (ktiles) {
    if (BF16)
      host_launch(dim3(ktiles, bh), dim3(attention_bf16_kernels::kBlock), attention_bf16_kernels::attention_bf16_dkv_kernel<D>,
                  s, gb.data(), qb.data(), kb.data(), vb.data(), lse.data(), delta.data(), dk.data(), dv.data());
    else
      host_launch(dim3(ktiles, bh), dim3(attention_kernels::kBlock), attention_kernels::attention_dkv_kernel<D>, s, g.data(),
                  q.data(), k.data(), v.data(), lse.data(), delta.data(), dk.data(), dv.data());
  }
  double worst = 0;
  bool empty_ok = true;
  for (int b = 0; b < bh; ++b) {
    auto at = [&](const std::vector<float>& a, int t, int row, int d) { return double(a[(std::size_t(b) * t + row) * D + d]); };
    std::vector<double> rdk(std::size_t(tk) * D, 0.0), rdv(rdk.size(), 0.0);
    for (int i = 0; i < tq; ++i) {
      std::vector<double> sc(tk), pr(tk, 0.0), dp(tk);
      double m = -INFINITY;
      for (int j = 0; j < tk; ++j) {
        double x = 0;
        for (int d = 0; d < D; ++d) x += at(q, tq, i, d) * at(k, tk, j, d);
        sc[j] = causal && j > i ? -INFINITY : x * s.scale;
        m = std::fmax(m, sc[j]);
      }
      double l = 0;
      for (int j = 0; j < tk; ++j) l += std::exp(sc[j] - m);
      if (tk == 0) {
        empty_ok = empty_ok && std::isinf(lse[std::size_t(b) * tq + i]) && std::isnan(out[(std::size_t(b) * tq + i) * D]);
        continue;
      }
      for (int j = 0; j < tk; ++j) pr[j] = std::exp(sc[j] - m) / l;
      bump(worst, rel_err(lse[std::size_t(b) * tq + i], m + std::log(l), 1.0));
      double dl = 0;
      for (int d = 0; d < D; ++d) {
        double o = 0;
        for (int j = 0; j < tk; ++j) o += pr[j] * at(v, tk, j, d);
        bump(worst, std::fabs(at(out, tq, i, d) - o));
        dl += o * at(g, tq, i, d);
      }
      for (int j = 0; j < tk; ++j) {
        dp[j] = 0;
        for (int d = 0; d < D; ++d) dp[j] += at(g, tq, i, d) * at(v, tk, j, d);
      }
      for (int d = 0; d < D; ++d) {
        double want = 0;
        for (int j = 0; j < tk; ++j) want += pr[j] * (dp[j] - dl) * at(k, tk, j, d) * s.scale;
        bump(worst, std::fabs(at(dq, tq, i, d) - want));
      }
      for (int j = 0; j < tk; ++j)
        for (int d = 0; d < D; ++d) {
          rdk[std::size_t(j) * D + d] += pr[j] * (dp[j] - dl) * at(q, tq, i, d) * s.scale;
          rdv[std::size_t(j) * D + d] += pr[j] * at(g, tq, i, d);
        }
    }
    for (int j = 0; j < tk; ++j)
      for (int d = 0; d < D; ++d) {
        bump(worst, std::fabs(at(dk, tk, j, d) - rdk[std::size_t(j) * D + d]));
        bump(worst, std::fabs(at(dv, tk, j, d) - rdv[std::size_t(j) * D + d]));
      }
  }
  const bool tails = out.back() == -7.0f && dq.back() == -7.0f && dk.back() == -7.0f && dv.back() == -7.0f;
  // bfloat16 rounding of p and ds before their products: errors of a few 1e-3 at these sizes.
  const bool ok = worst < (BF16 ? 2e-2 : 2e-5) && empty_ok && tails;
  std::printf("%s attention%s D=%d bh=%d Tq=%d Tk=%d causal=%d abs.err=%.2e%s%s\n", ok ? "ok  " : "FAIL", BF16 ? " bf16" : "", D, bh, tq, tk, causal,
              worst, empty_ok ? "" : " (Tk = 0 rows)", tails ? "" : " (wrote past an output)");
  return ok ? 0 : 1;
}

}  // namespace

// Embedding backward: n positions into `rows` rows (indices drawn from [lo, hi), so some
// are negative or out of range) against a sequential float sum in position order, which
// the kernel must equal bit for bit.
int check_embedding(int n, int rows, int cols, int lo, int hi, std::mt19937& rng) {
  using namespace embedding_kernels;
  std::uniform_int_distribution<int> pick(lo, hi - 1);
  std::normal_distribution<float> dist;
  std::vector<std::int64_t> index(n);
  for (auto& i : index) i = pick(rng);
  std::vector<float> g(std::size_t(n) * cols), out(std::size_t(rows) * cols + 1, -7.0f), want(out.size() - 1, 0.0f);
  for (auto& x : g) x = dist(rng);
  std::int64_t n_pow2 = 1;
  while (n_pow2 < n) n_pow2 <<= 1;
  std::vector<std::uint64_t> keys(n_pow2);
  host_launch(dim3(3), dim3(64), embedding_keys_kernel, std::int64_t(n), n_pow2, index.data(), std::int64_t(rows), keys.data());
  sort_kernels::for_each_bitonic_step(n_pow2, [&](std::int64_t j, std::int64_t size) {
    host_launch(dim3(2), dim3(64), sort_kernels::bitonic_step_kernel<std::uint64_t>, n_pow2, keys.data(), j, size);
  });
  host_launch(dim3(2, unsigned((cols + 31) / 32)), dim3(32), embedding_sum_kernel<float>, std::int64_t(rows), std::int64_t(cols),
              std::int64_t(n), keys.data(), g.data(), out.data());
  for (int i = 0; i < n; ++i) {
    std::int64_t r = index[i] < 0 ? index[i] + rows : index[i];
    if (r < 0 || r >= rows) continue;
    for (int c = 0; c < cols; ++c) want[std::size_t(r) * cols + c] += g[std::size_t(i) * cols + c];
  }
  bool ok = out.back() == -7.0f;
  for (std::size_t e = 0; e < want.size(); ++e) ok = ok && std::memcmp(&out[e], &want[e], 4) == 0;
  std::printf("%s embedding_backward n=%d rows=%d cols=%d indices in [%d, %d)\n", ok ? "ok  " : "FAIL", n, rows, cols, lo, hi);
  return ok ? 0 : 1;
}

// foreach_sum_squares and foreach_mul_ over tensors of mixed sizes (empty, a chunk and a
// tail, one element), more than one table's worth: sums against double loops, products
// against float ones bit for bit.
int check_foreach(std::mt19937& rng) {
  using namespace foreach_kernels;
  std::vector<std::int64_t> sizes = {kChunk + 5, 0, 1, 3 * kChunk};
  sizes.resize(sizes.size() + kMaxEntries<SumEntry<float>> + 3, 7);
  std::normal_distribution<float> dist;
  std::vector<std::vector<float>> xs;
  for (std::int64_t n : sizes) {
    xs.emplace_back(n);
    for (auto& v : xs.back()) v = dist(rng);
  }
  std::vector<double> out(xs.size(), -1.0);
  std::vector<SumEntry<float>> sums;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    sums.push_back({xs[i].data(), std::int64_t(xs[i].size()), 0, std::int64_t(i)});
    if (xs[i].empty()) out[i] = 0.0;  // the launch fills out with zeros first
  }
  for_each_table(sums, [&](const Table<SumEntry<float>>& table) {
    std::vector<double> partials(table.chunks);
    host_launch(dim3(2), dim3(kThreads), sum_squares_kernel<float>, table, partials.data());
    host_launch(dim3((table.count + 63) / 64), dim3(64), sum_partials_kernel<float>, table, partials.data(), out.data());
  });
  double worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    double want = 0;
    for (float v : xs[i]) want += double(v) * v;
    bump(worst, rel_err(out[i], want, 1e-30));
  }
  const float scale = 0.37f;
  std::vector<std::vector<float>> want(xs);
  for (auto& x : want)
    for (auto& v : x) v *= scale;
  std::vector<MulEntry<float>> muls;
  for (auto& x : xs) muls.push_back({x.data(), std::int64_t(x.size()), 0});
  for_each_table(muls, [&](const Table<MulEntry<float>>& table) {
    host_launch(dim3(2), dim3(kThreads), mul_kernel<float>, table, &scale);
  });
  const bool ok = worst < 1e-12 && xs == want;
  std::printf("%s foreach_sum_squares, foreach_mul_ over %zu tensors rel.err=%.2e\n", ok ? "ok  " : "FAIL", xs.size(), worst);
  return ok ? 0 : 1;
}

int main() {
  std::mt19937 rng(0);
  int failures = 0;
  failures += check_layer_norm(1, 1, 0.0f, -1, true, rng);
  failures += check_layer_norm(5, 257, 0.0f, -1, true, rng);
  failures += check_layer_norm(7, 300, 1e4f, -1, false, rng);
  failures += check_layer_norm(6, 513, 3.0f, 2, true, rng);
  failures += check_layer_norm(3, 31, 0.0f, -1, false, rng);
  for (int k = 0; k < 16; ++k) failures += check_adamw(k & 8, k & 4, k & 2, k & 1, rng);
  for (int c : {1, 5, 300, 1031})
    for (double smoothing : {0.0, 0.1}) failures += check_cross_entropy(c, smoothing, rng);
  failures += check_attention<64, false>(2, 45, 45, true, rng);
  failures += check_attention<64, false>(1, 40, 70, false, rng);
  failures += check_attention<128, false>(1, 37, 37, true, rng);
  failures += check_attention<128, false>(1, 20, 9, false, rng);
  failures += check_attention<64, false>(1, 5, 0, false, rng);
  failures += check_attention<32, false>(2, 70, 70, true, rng);
  failures += check_attention<32, false>(1, 33, 50, false, rng);
  failures += check_attention<64, true>(2, 45, 45, true, rng);
  failures += check_attention<64, true>(1, 70, 130, false, rng);
  failures += check_attention<64, true>(1, 150, 150, true, rng);
  failures += check_attention<128, true>(1, 37, 37, true, rng);
  failures += check_attention<128, true>(1, 20, 9, false, rng);
  failures += check_attention<128, true>(1, 9, 80, true, rng);
  failures += check_attention<64, true>(1, 5, 0, false, rng);
  failures += check_attention<32, true>(2, 70, 70, true, rng);
  failures += check_attention<32, true>(1, 33, 90, false, rng);
  failures += check_foreach(rng);
  failures += check_embedding(1, 3, 5, 0, 3, rng);
  failures += check_embedding(37, 5, 33, -5, 5, rng);
  failures += check_embedding(300, 1000, 7, -2, 1003, rng);
  failures += check_embedding(256, 4, 40, 0, 4, rng);
  failures += check_embedding(100, 2, 3, 1, 2, rng);  // one heavy row, one never used
  std::printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
