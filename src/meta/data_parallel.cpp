#include "meta/data_parallel.h"

#include <ATen/ops/tensor.h>
#include <fmt/format.h>

#include <csignal>

#include "dist/bucketed_all_reduce.h"
#include "util/error.h"

namespace abmll::meta {

TaskSlice task_slice(std::int64_t tasks, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world || tasks < world)
    throw Error(fmt::format("task_slice: rank {} of {} cannot share {} tasks", rank, world, tasks));
  const std::int64_t base = tasks / world, extra = tasks % world;
  return {rank * base + std::min<std::int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

StepAgreement combine_across_ranks(dist::ProcessGroup& group, MetaBatchGradient& g, std::int64_t slice_tasks,
                                   std::int64_t total_tasks, std::int64_t tokens, int signal, std::int64_t step) {
  const double weight = static_cast<double>(slice_tasks) / static_cast<double>(total_tasks);
  dist::all_reduce_weighted_sum(group, g.grads, weight, dist::kDefaultBucketBytes,
                                fmt::format("theta's gradients of step {}", step));
  // Scalars in float64, summed: weighted losses (every rank runs the same method, so the same fields, and a
  // figure equal on every rank survives since the weights sum to 1), then the token count and one flag per signal.
  std::vector<double> values = {weight * g.loss};
  if (g.query_nll) values.push_back(weight * *g.query_nll);
  for (const auto& [key, value] : g.extra.items()) values.push_back(weight * value.get<double>());
  for (double s : g.support_nll) values.push_back(weight * s);
  for (const auto& [key, value] : g.counts.items()) values.push_back(value.get<double>());
  values.push_back(static_cast<double>(tokens));
  values.push_back(signal == SIGTERM ? 1.0 : 0.0);
  values.push_back(signal == SIGINT ? 1.0 : 0.0);
  std::vector<at::Tensor> scalars = {at::tensor(values, at::kDouble).to(g.grads.front().device())};
  group.all_reduce(scalars, dist::ReduceOp::sum, fmt::format("losses of step {}", step));
  const at::Tensor sums = scalars.front().cpu();
  const double* v = sums.data_ptr<double>();
  std::size_t k = 0;
  g.loss = v[k++];
  if (g.query_nll) g.query_nll = v[k++];
  for (auto& [key, value] : g.extra.items()) value = v[k++];
  for (double& s : g.support_nll) s = v[k++];
  for (auto& [key, value] : g.counts.items()) value = static_cast<std::int64_t>(v[k++]);
  StepAgreement out;
  out.tokens = static_cast<std::int64_t>(v[k++]);
  const bool term = v[k++] > 0, interrupt = v[k++] > 0;
  out.signal = term ? SIGTERM : interrupt ? SIGINT : 0;
  return out;
}

void check_same_start(dist::ProcessGroup& group, std::int64_t first_step) {
  // max(step) and max(-step) = -min(step) in one collective.
  std::vector<at::Tensor> t = {at::tensor({double(first_step), -double(first_step)}, at::kDouble)};
  if (group.backend() == dist::BackendKind::nccl) t.front() = t.front().cuda();
  group.all_reduce(t, dist::ReduceOp::max, "the resume step");
  const at::Tensor m = t.front().cpu();
  const auto highest = static_cast<std::int64_t>(m[0].item<double>()),
             lowest = static_cast<std::int64_t>(-m[1].item<double>());
  if (highest != lowest)
    throw InputError(fmt::format("ranks start from different steps ({} here, between {} and {} across ranks): "
                                 "--resume must find the same checkpoints on every rank (a run folder every node "
                                 "sees)",
                                 first_step, lowest, highest));
}

}  // namespace abmll::meta
