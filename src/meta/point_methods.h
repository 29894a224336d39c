// The meta-gradients of the point-estimate baselines (ABMLL.md section 5) for one meta-batch of G tasks, over the
// same NllFunction as ABMLL's objective (abmll_objective.h), with the learned LoRA theta:
//   lora     one LoRA trained on the union of the training tasks: the gradient of mean_i NLL(S_i u Q_i; theta);
//   fomaml   first-order MAML: phi_i = K inner steps from theta on S_i; the gradient of mean_i NLL(Q_i; phi_i),
//            taken at phi_i and applied to theta;
//   reptile  Reptile (Nichol et al. 2018): phi_i = K inner steps from theta on S_i u Q_i; the update direction
//            theta - mean_i phi_i, handed to the outer optimiser as a gradient.
// At test time all three adapt the same way (adapt_point_lora): K inner steps on the task's support set.
//
// Dropout (lora.dropout, PEFT's lora_dropout on the adapter's input) is on in every forward whose gradient is taken:
// the masks of inner step k and of the outer forward come from named streams of `dropout_seed` ("dropout/<k>",
// "dropout/outer"), so a step is reproducible and a resumed run draws what an uninterrupted one does. Forwards that
// only measure (reptile's query NLL) run without it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "config/experiment_config.h"
#include "meta/abmll_objective.h"
#include "meta/inner_descent.h"
#include "meta/point_lora.h"

namespace abmll::meta {

// The figures are read back from the device once, at the end (util/read_scalars.h).
struct PointGradient {
  std::vector<at::Tensor> grads;    // one per theta.tensors() entry
  double outer_loss = 0;            // the loss the gradient is of (reptile: the mean NLL before the last step)
  std::optional<double> query_nll;  // mean query NLL under the adapted copies (fomaml, reptile)
  std::vector<double> support_nll;  // mean inner-loop NLL before each inner step (empty for lora)
};

// `method` is lora, fomaml or reptile.
PointGradient point_meta_gradient(Method method, const PointLora& theta, int64_t tasks, const NllFunction& nll,
                                  const InnerDescent& inner, std::uint64_t dropout_seed = 0);

// G adapted copies of theta after inner.steps steps on each task's support NLL (first order: leaf tensors).
// `support_nll`, when given, receives the mean support NLL before each step (0-dim tensors on the device, not read
// back: util/read_scalars.h).
PointLora adapt_point_lora(const PointLora& theta, int64_t tasks, const NllFunction& nll, const InnerDescent& inner,
                           std::vector<at::Tensor>* support_nll = nullptr, std::uint64_t dropout_seed = 0);

}  // namespace abmll::meta
