#include "meta/point_methods.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/autograd.h>

#include <string>

#include "util/error.h"
#include "util/rng.h"
#include "util/read_scalars.h"

namespace abmll::meta {
namespace {

// `adapter` with its dropout on, masks from the stream `name` of `dropout_seed` (nothing changes without dropout).
std::unique_ptr<model::BatchedLora> with_dropout(std::unique_ptr<model::BatchedLora> adapter,
                                                 std::uint64_t dropout_seed, const std::string& name) {
  adapter->set_training(true, Rng::stream(dropout_seed, name).next_u64());
  return adapter;
}

// K inner steps on `split` from copies of theta; `nll_before` receives the mean NLL before each step.
PointLora descend_copies(const PointLora& theta, int64_t tasks, const NllFunction& nll, const InnerDescent& inner,
                         Split split, std::vector<at::Tensor>* nll_before, std::uint64_t dropout_seed) {
  const PointLora start = theta.copies(tasks, /*track=*/false);
  // Each step's adapter outlives that step's backward (gradient checkpointing reruns layers through it, with the
  // same masks: they are drawn from the adapter's seed).
  std::unique_ptr<model::BatchedLora> adapter;
  const InnerLoss loss = [&](const std::vector<at::Tensor>& params, int64_t k) {
    adapter = with_dropout(start.with_tensors(params).adapter(tasks), dropout_seed, fmt::format("dropout/{}", k));
    const at::Tensor task_nll = nll(*adapter, 1, split);  // [G]
    if (nll_before) nll_before->push_back(task_nll.mean().detach());
    return task_nll.sum();
  };
  return start.with_tensors(descend(start.tensors(), loss, inner, /*create_graph=*/false));
}

}  // namespace

PointLora adapt_point_lora(const PointLora& theta, int64_t tasks, const NllFunction& nll, const InnerDescent& inner,
                           std::vector<at::Tensor>* support_nll, std::uint64_t dropout_seed) {
  return descend_copies(theta, tasks, nll, inner, Split::support, support_nll, dropout_seed);
}

PointGradient point_meta_gradient(Method method, const PointLora& theta, int64_t tasks, const NllFunction& nll,
                                  const InnerDescent& inner, std::uint64_t dropout_seed) {
  at::AutoGradMode grad_on(true);
  PointGradient result;
  const std::vector<at::Tensor> theta_params = theta.tensors();
  at::Tensor loss, query_nll;            // 0-dim; query_nll undefined for lora
  std::vector<at::Tensor> support_nll;   // 0-dim each
  switch (method) {
    case Method::lora: {
      const auto adapter = with_dropout(theta.adapter(tasks), dropout_seed, "dropout/outer");
      loss = nll(*adapter, 1, Split::all).mean();
      result.grads = torch::autograd::grad({loss}, theta_params, {}, false, false, /*allow_unused=*/true);
      break;
    }
    case Method::fomaml: {
      const PointLora phi = adapt_point_lora(theta, tasks, nll, inner, &support_nll, dropout_seed);
      const auto adapter = with_dropout(phi.adapter(tasks), dropout_seed, "dropout/outer");
      loss = nll(*adapter, 1, Split::query).mean();
      const std::vector<at::Tensor> phi_params = phi.tensors();
      const auto g_phi = torch::autograd::grad({loss}, phi_params, {}, false, false, /*allow_unused=*/true);
      // Row g of each grouped gradient is task g's; the mean over tasks' losses already divides by G.
      for (size_t i = 0; i < phi_params.size(); ++i)
        result.grads.push_back(g_phi[i].defined() ? g_phi[i].sum(0) : at::zeros_like(theta_params[i]));
      query_nll = loss;
      break;
    }
    case Method::reptile: {
      const PointLora phi = descend_copies(theta, tasks, nll, inner, Split::all, &support_nll, dropout_seed);
      const std::vector<at::Tensor> phi_params = phi.tensors();
      for (size_t i = 0; i < phi_params.size(); ++i)
        result.grads.push_back(theta_params[i].detach() - phi_params[i].detach().mean(0));
      loss = support_nll.empty() ? at::zeros({}, theta_params.front().options()) : support_nll.back();
      const at::NoGradGuard no_grad;
      query_nll = nll(*phi.adapter(tasks), 1, Split::query).mean();
      break;
    }
    default:
      throw Error(fmt::format("point_meta_gradient: {} is not a point-estimate method", to_string(method)));
  }

  // Every figure of the step in one read from the device.
  std::vector<at::Tensor> figures = {loss};
  if (query_nll.defined()) figures.push_back(query_nll);
  figures.insert(figures.end(), support_nll.begin(), support_nll.end());
  const std::vector<double> v = read_scalars(figures);
  std::size_t k = 0;
  result.outer_loss = v[k++];
  if (query_nll.defined()) result.query_nll = v[k++];
  result.support_nll.assign(v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return result;
}

}  // namespace abmll::meta
