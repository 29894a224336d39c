#include "meta/abmll_objective.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/autograd.h>

#include "meta/inner_descent.h"
#include "util/read_scalars.h"

namespace abmll::meta {
namespace {

std::vector<at::Tensor> detached(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(t.detach());
  return out;
}

}  // namespace

LoraPosterior infer_posteriors(const LoraPosterior& theta, int64_t tasks, const NllFunction& nll,
                               const InnerLoop& inner, bool track_prior, const TaskNoise& noise,
                               std::vector<at::Tensor>* support_nll, FloorStats* floor) {
  const LoraPosterior start = theta.posteriors_from(tasks, track_prior);
  // In first-order mode the prior inside the inner KL is a constant: no graph back to theta is built.
  const LoraPosterior prior = track_prior ? theta : theta.with_tensors(detached(theta.tensors()));
  // Each step's draw outlives that step's backward (gradient checkpointing reruns layers through it): it is
  // replaced only when the next step draws.
  std::unique_ptr<model::LinearAdapter> draw;
  const InnerLoss loss = [&](const std::vector<at::Tensor>& params, int64_t k) {
    const LoraPosterior phi = start.with_inner_tensors(params);
    draw = phi.sample(inner.samples, noise);
    const at::Tensor task_nll = nll(*draw, inner.samples, Split::support);  // [G]
    if (support_nll) support_nll->push_back(task_nll.mean().detach());
    at::Tensor value = task_nll.sum();
    if (!(k == 0 && inner.first_step_nll_only) && inner.beta != 0)
      value = value + inner.beta * phi.kl_to(prior, floor).sum();
    return value;
  };
  return start.with_inner_tensors(
      descend(start.inner_tensors(), loss, {inner.steps, inner.lr, inner.optimizer}, /*create_graph=*/track_prior));
}

MetaGradient abmll_meta_gradient(const LoraPosterior& theta, int64_t tasks, const NllFunction& nll,
                                 const InnerLoop& inner, const OuterObjective& outer, const TaskNoise& noise) {
  at::AutoGradMode grad_on(true);
  MetaGradient result;
  std::vector<at::Tensor> support_nll;
  FloorStats floor;
  const LoraPosterior phi = infer_posteriors(theta, tasks, nll, inner, outer.second_order, noise, &support_nll, &floor);

  // The draws outlive the backward below (gradient checkpointing reruns layers through them).
  const std::unique_ptr<model::LinearAdapter> query_draw = phi.sample(inner.samples, noise);
  const at::Tensor query_nll = nll(*query_draw, inner.samples, Split::query);  // [G]
  at::Tensor data_term = query_nll.mean();
  std::unique_ptr<model::LinearAdapter> support_draw;
  if (outer.include_support) {
    support_draw = phi.sample(inner.samples, noise);
    data_term = data_term + nll(*support_draw, inner.samples, Split::support).mean();
  }

  const std::vector<at::Tensor> theta_params = theta.tensors();
  const at::Tensor hyper = theta.hyperprior_neg_log_density(outer.hyper_mean_std, outer.hyper_a0, outer.hyper_b0);
  const at::Tensor hyper_term = outer.gamma * hyper / outer.num_train_tasks;

  at::Tensor loss, kl;
  if (outer.second_order) {
    kl = phi.kl_to(theta, &floor);  // phi depends on theta: full autograd
    loss = data_term + outer.beta * kl.mean() + hyper_term;
    result.grads = torch::autograd::grad({loss}, theta_params, {}, false, false, /*allow_unused=*/true);
  } else {
    // Query (and support) NLL: gradient at phi^K, passed to theta (first-order MAML). Each task's gradient sits
    // in its row of the grouped tensors; summing the rows gives theta's gradient of the task mean.
    const std::vector<at::Tensor> phi_params = phi.inner_tensors();
    const auto g_phi = phi.group_sums(
        torch::autograd::grad({data_term}, phi_params, {}, false, false, /*allow_unused=*/true));
    // KL and hyperprior: exact in theta with phi^K fixed.
    const LoraPosterior phi_fixed = phi.with_inner_tensors(detached(phi_params));
    kl = phi_fixed.kl_to(theta, &floor);
    const at::Tensor regulariser = outer.beta * kl.mean() + hyper_term;
    const auto g_theta = torch::autograd::grad({regulariser}, theta_params, {}, false, false, true);
    for (size_t i = 0; i < theta_params.size(); ++i) {
      at::Tensor g = g_theta[i].defined() ? g_theta[i] : at::zeros_like(theta_params[i]);
      if (g_phi[i].defined()) g = g + g_phi[i];
      result.grads.push_back(g);
    }
    loss = data_term + regulariser;
  }

  // Every figure of the step in one read from the device.
  std::vector<at::Tensor> figures = {loss, kl.mean(), query_nll.mean(), hyper};
  if (floor.hits.defined()) figures.push_back(floor.hits);
  figures.insert(figures.end(), support_nll.begin(), support_nll.end());
  const std::vector<double> v = read_scalars(figures);
  std::size_t k = 0;
  result.outer_loss = v[k++];
  result.kl = v[k++];
  result.query_nll = v[k++];
  result.hyperprior = v[k++];
  if (floor.hits.defined()) result.floor_hits = static_cast<std::int64_t>(v[k++]);
  result.floor_entries = floor.entries;
  result.support_nll.assign(v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return result;
}

}  // namespace abmll::meta
