// The ABMLL objective (ABMLL.md section 3) for one meta-batch of G tasks, independent of how the NLL of a task's
// examples is computed: the caller supplies an NllFunction (the LLM with per-sequence LoRA adapters in practice,
// a toy model in tests). All G tasks advance through their inner steps in lock-step, each with its own posterior.
//
//   inner:  phi_i^0 = theta;  phi_i^{k+1} = phi_i^k - lr_in * grad[ NLL(S_i; phi_i^k) + beta KL(q_phi_i^k || p_theta) ]
//   outer:  L(theta) = mean_i [ NLL(Q_i; phi_i^K) + beta KL(q_phi_i^K || p_theta) ] + gamma (-log p(theta)) / N
//
// First-order (default): the query NLL's gradient at phi_i^K is passed to theta as in first-order MAML, the KL and
// hyperprior terms are differentiated in theta exactly (phi_i^K held fixed). Second-order: autograd through the
// inner steps.
//
// The variational family (factor or weight, ABMLL.md section 2) is behind LoraPosterior: this file has one code
// path for both.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <map>
#include <vector>

#include "config/experiment_config.h"
#include "meta/lora_posterior.h"
#include "meta/task_noise.h"
#include "model/linear.h"

namespace abmll::meta {

// Which examples of each task's episode an NLL covers (`all`: support and query together).
enum class Split { support, query, all };

// Per-task NLL [G] of `split` under `adapter`, which holds G * S adapter groups (group-major: sample s of task g is
// group g * S + s; LoraPosterior::sample), averaged over the S samples and over the task's examples. Must be
// differentiable in the adapter's trainable tensors. The objective keeps the adapter alive until the result's
// backward has run (gradient checkpointing reruns layers through it then).
using NllFunction = std::function<at::Tensor(model::LinearAdapter& adapter, int64_t samples, Split split)>;

struct InnerLoop {
  int64_t steps = 5;          // K
  double lr = 1e-3;
  InnerOptimizer optimizer = InnerOptimizer::sgd;
  bool first_step_nll_only = false;
  int64_t samples = 1;        // Monte Carlo draws per NLL estimate
  double beta = 1e-7;         // KL weight
};

struct OuterObjective {
  double beta = 1e-7;
  double gamma = 1e-7;
  double num_train_tasks = 1;  // N: the hyperprior is spread over the training tasks
  bool second_order = false;
  bool include_support = false;  // add NLL(S_i; phi_i^K) to the outer loss
  double hyper_mean_std = 1, hyper_a0 = 1, hyper_b0 = 0.01;
};

// phi^K for G tasks from theta. With `track_prior` the result is a differentiable function of theta (second
// order); otherwise each phi tensor is a fresh leaf. `support_nll`, when given, receives the mean support NLL
// before each step (K 0-dim tensors on the device, not read back: util/read_scalars.h); `floor`, how often the scale
// floor held in the inner KLs. `noise` holds one generator per task (task_noise.h).
LoraPosterior infer_posteriors(const LoraPosterior& theta, int64_t tasks, const NllFunction& nll,
                               const InnerLoop& inner, bool track_prior, const TaskNoise& noise,
                               std::vector<at::Tensor>* support_nll = nullptr, FloorStats* floor = nullptr);

// The figures below are read back from the device once, at the end (util/read_scalars.h).
struct MetaGradient {
  std::vector<at::Tensor> grads;  // one per theta.tensors() entry
  double outer_loss = 0;          // L(theta)
  double query_nll = 0;           // mean over tasks
  double kl = 0;                  // mean over tasks of KL(q_phi^K || p_theta)
  double hyperprior = 0;          // -log p(theta)
  std::vector<double> support_nll;  // mean support NLL before each inner step
  // The scale floor in the step's KLs (inner and outer; weight family): entries of S_q and S_p at c, of how many.
  std::int64_t floor_hits = 0, floor_entries = 0;
};

// Runs the inner loop for G tasks and returns L(theta) and its gradient in theta; task g's noise comes from noise[g].
MetaGradient abmll_meta_gradient(const LoraPosterior& theta, int64_t tasks, const NllFunction& nll,
                                 const InnerLoop& inner, const OuterObjective& outer, const TaskNoise& noise);

}  // namespace abmll::meta
