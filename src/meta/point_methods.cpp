#include "meta/point_methods.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/zeros_like.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/autograd.h>

#include "util/error.h"

namespace abmll::meta {
namespace {

// K inner steps on `split` from copies of theta; `nll_before` receives the mean NLL before each step.
PointLora descend_copies(const PointLora& theta, int64_t tasks, const NllFunction& nll, const InnerDescent& inner,
                         Split split, std::vector<double>* nll_before) {
  const PointLora start = theta.copies(tasks, /*track=*/false);
  // Each step's adapter outlives that step's backward (gradient checkpointing reruns layers through it).
  std::unique_ptr<model::BatchedLora> adapter;
  const InnerLoss loss = [&](const std::vector<at::Tensor>& params, int64_t) {
    adapter = start.with_tensors(params).adapter(tasks);
    const at::Tensor task_nll = nll(*adapter, 1, split);  // [G]
    if (nll_before) nll_before->push_back(task_nll.mean().item<double>());
    return task_nll.sum();
  };
  return start.with_tensors(descend(start.tensors(), loss, inner, /*create_graph=*/false));
}

}  // namespace

PointLora adapt_point_lora(const PointLora& theta, int64_t tasks, const NllFunction& nll, const InnerDescent& inner,
                           std::vector<double>* support_nll) {
  return descend_copies(theta, tasks, nll, inner, Split::support, support_nll);
}

PointGradient point_meta_gradient(Method method, const PointLora& theta, int64_t tasks, const NllFunction& nll,
                                  const InnerDescent& inner) {
  at::AutoGradMode grad_on(true);
  PointGradient result;
  const std::vector<at::Tensor> theta_params = theta.tensors();
  switch (method) {
    case Method::lora: {
      const auto adapter = theta.adapter(tasks);
      const at::Tensor loss = nll(*adapter, 1, Split::all).mean();
      result.grads = torch::autograd::grad({loss}, theta_params, {}, false, false, /*allow_unused=*/true);
      result.outer_loss = loss.item<double>();
      break;
    }
    case Method::fomaml: {
      const PointLora phi = adapt_point_lora(theta, tasks, nll, inner, &result.support_nll);
      const auto adapter = phi.adapter(tasks);
      const at::Tensor loss = nll(*adapter, 1, Split::query).mean();
      const std::vector<at::Tensor> phi_params = phi.tensors();
      const auto g_phi = torch::autograd::grad({loss}, phi_params, {}, false, false, /*allow_unused=*/true);
      // Row g of each grouped gradient is task g's; the mean over tasks' losses already divides by G.
      for (size_t i = 0; i < phi_params.size(); ++i)
        result.grads.push_back(g_phi[i].defined() ? g_phi[i].sum(0) : at::zeros_like(theta_params[i]));
      result.outer_loss = loss.item<double>();
      result.query_nll = result.outer_loss;
      break;
    }
    case Method::reptile: {
      std::vector<double> nll_before;
      const PointLora phi = descend_copies(theta, tasks, nll, inner, Split::all, &nll_before);
      const std::vector<at::Tensor> phi_params = phi.tensors();
      for (size_t i = 0; i < phi_params.size(); ++i)
        result.grads.push_back(theta_params[i].detach() - phi_params[i].detach().mean(0));
      result.support_nll = nll_before;
      result.outer_loss = nll_before.empty() ? 0.0 : nll_before.back();
      const at::NoGradGuard no_grad;
      result.query_nll = nll(*phi.adapter(tasks), 1, Split::query).mean().item<double>();
      break;
    }
    default:
      throw Error(fmt::format("point_meta_gradient: {} is not a point-estimate method", to_string(method)));
  }
  return result;
}

}  // namespace abmll::meta
