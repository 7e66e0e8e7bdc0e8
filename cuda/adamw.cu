// Launch of the multi-tensor Adam / AdamW kernel; the algorithm is in adamw_kernels.cuh.
#include <vector>

#include "adamw_kernels.cuh"
#include "common.cuh"
#include "training.h"

namespace pyzen::cuda {

using namespace adamw_kernels;

namespace {

template <typename T>
void step_all(const std::vector<Array>& params, const std::vector<Array>& grads, const std::vector<Array>& exp_avgs,
              const std::vector<Array>& exp_avg_sqs, const std::vector<Array>& max_exp_avg_sqs,
              const std::vector<double>& steps, const AdamwArgs& h) {
  std::vector<Entry<T>> entries;
  for (std::size_t i = 0; i < params.size(); ++i)
    entries.push_back({static_cast<T*>(params[i].data()), static_cast<const T*>(grads[i].data()),
                       static_cast<T*>(exp_avgs[i].data()), static_cast<T*>(exp_avg_sqs[i].data()),
                       max_exp_avg_sqs.empty() ? nullptr : static_cast<T*>(max_exp_avg_sqs[i].data()), params[i].numel(), 0,
                       make_coef<T>(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, steps[i])});
  const Flags flags{h.weight_decay != 0, h.decoupled, h.maximize};
  for_each_table(entries, [&](const Table<Entry<T>>& table) {
    adamw_kernel<T><<<table_blocks(table.chunks), kThreads>>>(table, flags);
    check_launch("adamw_step", "adamw_kernel");
  });
}

}  // namespace

void adamw_step(const std::vector<Array>& params, const std::vector<Array>& grads, const std::vector<Array>& exp_avgs,
                const std::vector<Array>& exp_avg_sqs, const std::vector<Array>& max_exp_avg_sqs,
                const std::vector<double>& steps, const AdamwArgs& h) {
  if (params.empty()) return;
  PYZEN_DISPATCH_FLOAT(params[0].dtype, "adamw_step",
                       { step_all<scalar_t>(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h); });
}

}  // namespace pyzen::cuda
