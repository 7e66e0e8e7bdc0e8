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
  std::vector<Entry<T>> table;
  std::int64_t chunks = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::int64_t n = params[i].numel();
    if (n == 0) continue;  // an entry must own a chunk for the kernel's search
    table.push_back({static_cast<T*>(params[i].data()), static_cast<const T*>(grads[i].data()),
                     static_cast<T*>(exp_avgs[i].data()), static_cast<T*>(exp_avg_sqs[i].data()),
                     max_exp_avg_sqs.empty() ? nullptr : static_cast<T*>(max_exp_avg_sqs[i].data()), n, chunks,
                     make_coef<T>(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, steps[i])});
    chunks += (n + kChunk - 1) / kChunk;
  }
  if (table.empty()) return;
  // The table travels in a device buffer of int64 words (Entry is a multiple of 8 bytes).
  static_assert(sizeof(Entry<T>) % 8 == 0);
  const auto words = static_cast<std::int64_t>(table.size() * sizeof(Entry<T>) / 8);
  const Array dev = empty({words}, DType::i64, "adamw_step");
  copy_to_device(dev, table.data(), "adamw_step");
  const unsigned blocks = static_cast<unsigned>(chunks < 65536 * 16 ? chunks : 65536 * 16);
  adamw_kernel<T><<<blocks, kThreads>>>(static_cast<const Entry<T>*>(dev.data()), static_cast<int>(table.size()), chunks,
                                        Flags{h.weight_decay != 0, h.decoupled, h.maximize});
  check_launch("adamw_step", "adamw_kernel");
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
