// Launches of the multi-tensor gradient-clipping kernels; the algorithm is in
// foreach_kernels.cuh.
#include <vector>

#include "common.cuh"
#include "foreach_kernels.cuh"
#include "kernels.h"
#include "training.h"

namespace pyzen::cuda {

using namespace foreach_kernels;

void foreach_sum_squares(const Array& out, const std::vector<Array>& xs) {
  const char* op = "foreach_sum_squares";
  if (xs.empty()) return;
  fill(out, 0.0, 0);  // empty tensors own no chunk and keep their 0
  PYZEN_DISPATCH_FLOAT(xs[0].dtype, op, {
    std::vector<SumEntry<scalar_t>> entries;
    for (std::size_t i = 0; i < xs.size(); ++i)
      entries.push_back({static_cast<const scalar_t*>(xs[i].data()), xs[i].numel(), 0, static_cast<std::int64_t>(i)});
    for_each_table(entries, [&](const Table<SumEntry<scalar_t>>& table) {
      const Array partials = empty({table.chunks}, DType::f64, op);
      sum_squares_kernel<scalar_t><<<table_blocks(table.chunks), kThreads>>>(table, static_cast<double*>(partials.data()));
      check_launch(op, "sum_squares_kernel");
      sum_partials_kernel<scalar_t><<<(table.count + 63) / 64, 64>>>(table, static_cast<const double*>(partials.data()),
                                                                     static_cast<double*>(out.data()));
      check_launch(op, "sum_partials_kernel");
    });
  });
}

void foreach_mul_(const std::vector<Array>& xs, const Array& scale) {
  const char* op = "foreach_mul_";
  if (xs.empty()) return;
  PYZEN_DISPATCH_FLOAT(xs[0].dtype, op, {
    std::vector<MulEntry<scalar_t>> entries;
    for (const Array& x : xs) entries.push_back({static_cast<scalar_t*>(x.data()), x.numel(), 0});
    for_each_table(entries, [&](const Table<MulEntry<scalar_t>>& table) {
      mul_kernel<scalar_t><<<table_blocks(table.chunks), kThreads>>>(table, static_cast<const scalar_t*>(scale.data()));
      check_launch(op, "mul_kernel");
    });
  });
}

}  // namespace pyzen::cuda
