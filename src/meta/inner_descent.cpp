#include "meta/inner_descent.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/sqrt.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

namespace abmll::meta {

std::vector<at::Tensor> descend(std::vector<at::Tensor> params, const InnerLoss& loss, const InnerDescent& inner,
                                bool create_graph) {
  at::AutoGradMode grad_on(true);
  std::vector<at::Tensor> m, v;  // Adam's moments, one per tensor (each already carries the task dimension)
  for (int64_t k = 0; k < inner.steps; ++k) {
    const at::Tensor value = loss(params, k);
    const auto grads = torch::autograd::grad({value}, params, {}, /*retain_graph=*/create_graph, create_graph,
                                             /*allow_unused=*/true);
    if (inner.optimizer == InnerOptimizer::adam && m.empty()) {
      for (const auto& p : params) m.push_back(at::zeros_like(p)), v.push_back(at::zeros_like(p));
    }
    std::vector<at::Tensor> next;
    next.reserve(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const at::Tensor g = grads[i].defined() ? grads[i] : at::zeros_like(params[i]);
      at::Tensor step;
      if (inner.optimizer == InnerOptimizer::sgd) {
        step = inner.lr * g;
      } else {
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.999 * v[i] + 0.001 * g * g;
        const double t = static_cast<double>(k + 1);
        const double c1 = 1 - std::pow(0.9, t), c2 = 1 - std::pow(0.999, t);
        step = inner.lr * (m[i] / c1) / (at::sqrt(v[i] / c2) + 1e-8);
      }
      const at::Tensor updated = params[i] - step;
      next.push_back(create_graph ? updated : updated.detach().requires_grad_(true));
    }
    params = std::move(next);
  }
  return params;
}

}  // namespace abmll::meta
