#include "meta/abmll_objective.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/sqrt.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "util/error.h"

namespace abmll::meta {
namespace {

// Adam's moments for the inner loop, one set per phi tensor (each already carries the task dimension).
struct InnerAdamState {
  std::vector<at::Tensor> m, v;
  int64_t t = 0;
};

std::vector<at::Tensor> detached(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(t.detach());
  return out;
}

}  // namespace

LoraPosterior infer_posteriors(const LoraPosterior& theta, int64_t tasks, const NllFunction& nll,
                               const InnerLoop& inner, bool track_prior, at::Generator generator,
                               std::vector<double>* support_nll, FloorStats* floor) {
  LoraPosterior phi = theta.posteriors_from(tasks, track_prior);
  // In first-order mode the prior inside the inner KL is a constant: no graph back to theta is built.
  const LoraPosterior prior = track_prior ? theta : theta.with_tensors(detached(theta.tensors()));
  InnerAdamState adam;
  for (int64_t k = 0; k < inner.steps; ++k) {
    at::AutoGradMode grad_on(true);
    // The draw outlives this step's backward: under gradient checkpointing, backward reruns layers through it.
    const std::unique_ptr<model::LinearAdapter> draw = phi.sample(inner.samples, generator);
    const at::Tensor task_nll = nll(*draw, inner.samples, Split::support);  // [G]
    if (support_nll) support_nll->push_back(task_nll.mean().item<double>());
    // Each task's loss depends on its own phi only, so one backward of the sum gives every task its gradient.
    at::Tensor loss = task_nll.sum();
    if (!(k == 0 && inner.first_step_nll_only) && inner.beta != 0) loss = loss + inner.beta * phi.kl_to(prior, floor).sum();
    const std::vector<at::Tensor> params = phi.tensors();
    const auto grads = torch::autograd::grad({loss}, params, {}, /*retain_graph=*/track_prior,
                                             /*create_graph=*/track_prior, /*allow_unused=*/true);
    std::vector<at::Tensor> next;
    next.reserve(params.size());
    if (inner.optimizer == InnerOptimizer::adam) {
      ++adam.t;
      if (adam.m.empty())
        for (const auto& p : params) adam.m.push_back(at::zeros_like(p)), adam.v.push_back(at::zeros_like(p));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const at::Tensor g = grads[i].defined() ? grads[i] : at::zeros_like(params[i]);
      at::Tensor step;
      if (inner.optimizer == InnerOptimizer::sgd) {
        step = inner.lr * g;
      } else {  // Adam (beta1 0.9, beta2 0.999, eps 1e-8), written in differentiable ops for second order
        adam.m[i] = 0.9 * adam.m[i] + 0.1 * g;
        adam.v[i] = 0.999 * adam.v[i] + 0.001 * g * g;
        const double c1 = 1 - std::pow(0.9, double(adam.t)), c2 = 1 - std::pow(0.999, double(adam.t));
        step = inner.lr * (adam.m[i] / c1) / (at::sqrt(adam.v[i] / c2) + 1e-8);
      }
      at::Tensor updated = params[i] - step;
      next.push_back(track_prior ? updated : updated.detach().requires_grad_(true));
    }
    phi = phi.with_tensors(next);
  }
  return phi;
}

MetaGradient abmll_meta_gradient(const LoraPosterior& theta, int64_t tasks, const NllFunction& nll,
                                 const InnerLoop& inner, const OuterObjective& outer, at::Generator generator) {
  at::AutoGradMode grad_on(true);
  MetaGradient result;
  const LoraPosterior phi = infer_posteriors(theta, tasks, nll, inner, outer.second_order, generator,
                                             &result.support_nll, &result.floor);

  // The draws outlive the backward below (gradient checkpointing reruns layers through them).
  const std::unique_ptr<model::LinearAdapter> query_draw = phi.sample(inner.samples, generator);
  const at::Tensor query_nll = nll(*query_draw, inner.samples, Split::query);  // [G]
  at::Tensor data_term = query_nll.mean();
  std::unique_ptr<model::LinearAdapter> support_draw;
  if (outer.include_support) {
    support_draw = phi.sample(inner.samples, generator);
    data_term = data_term + nll(*support_draw, inner.samples, Split::support).mean();
  }

  const std::vector<at::Tensor> theta_params = theta.tensors();
  const at::Tensor hyper = theta.hyperprior_neg_log_density(outer.hyper_mean_std, outer.hyper_a0, outer.hyper_b0);
  const at::Tensor hyper_term = outer.gamma * hyper / outer.num_train_tasks;

  if (outer.second_order) {
    const at::Tensor kl = phi.kl_to(theta, &result.floor);  // phi depends on theta: full autograd
    const at::Tensor loss = data_term + outer.beta * kl.mean() + hyper_term;
    result.grads = torch::autograd::grad({loss}, theta_params, {}, false, false, /*allow_unused=*/true);
    result.outer_loss = loss.item<double>();
    result.kl = kl.mean().item<double>();
  } else {
    // Query (and support) NLL: gradient at phi^K, passed to theta (first-order MAML). Each task's gradient sits
    // in its row of the grouped tensors; summing the rows gives theta's gradient of the task mean.
    const std::vector<at::Tensor> phi_params = phi.tensors();
    const auto g_phi = torch::autograd::grad({data_term}, phi_params, {}, false, false, /*allow_unused=*/true);
    // KL and hyperprior: exact in theta with phi^K fixed.
    const LoraPosterior phi_fixed = phi.with_tensors(detached(phi_params));
    const at::Tensor kl = phi_fixed.kl_to(theta, &result.floor);
    const at::Tensor regulariser = outer.beta * kl.mean() + hyper_term;
    const auto g_theta = torch::autograd::grad({regulariser}, theta_params, {}, false, false, true);
    for (size_t i = 0; i < theta_params.size(); ++i) {
      at::Tensor g = g_theta[i].defined() ? g_theta[i] : at::zeros_like(theta_params[i]);
      if (g_phi[i].defined()) g = g + g_phi[i].sum(0);
      result.grads.push_back(g);
    }
    result.outer_loss = (data_term + regulariser).item<double>();
    result.kl = kl.mean().item<double>();
  }
  result.query_nll = query_nll.mean().item<double>();
  result.hyperprior = hyper.item<double>();
  return result;
}

}  // namespace abmll::meta
