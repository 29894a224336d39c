// The inner loop every method shares: K steps of gradient descent (SGD, or Adam written in differentiable ops) on a
// list of tensors that carry a leading task dimension, so that all tasks of a meta-batch advance in lock-step.
// Each task's loss depends on its own rows only, so one backward of the summed loss gives every task its gradient.
//
// With `create_graph` the result stays a differentiable function of the starting tensors (second-order
// meta-gradients); otherwise every step starts from fresh leaf tensors and no graph outlives a step.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "config/experiment_config.h"

namespace abmll::meta {

struct InnerDescent {
  int64_t steps = 5;  // K
  double lr = 1e-3;
  InnerOptimizer optimizer = InnerOptimizer::sgd;  // Adam: beta1 0.9, beta2 0.999, eps 1e-8, bias-corrected
};

// The loss to descend at inner step k (0-based) for the current tensors: a scalar, the sum over tasks.
using InnerLoss = std::function<at::Tensor(const std::vector<at::Tensor>& params, int64_t k)>;

// `start` after inner.steps steps on `loss`. Tensors the loss does not depend on are left unchanged.
std::vector<at::Tensor> descend(std::vector<at::Tensor> start, const InnerLoss& loss, const InnerDescent& inner,
                                bool create_graph);

}  // namespace abmll::meta
