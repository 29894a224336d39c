// The seam between ABMLL's objective and its variational families (ABMLL.md section 2): a LoraPosterior is the prior
// theta or a meta-batch's task posteriors phi under either family,
//   factor  FactorGaussian (factor_gaussian.h): entry-wise Gaussians over the LoRA factors, sampled as factors;
//   weight  WeightGaussian (weight_family.h): an entry-wise Gaussian over the weight update, sampled by the local
//           reparameterisation,
// with the operations the objective, the run loop, adapt and evaluate need. The set of families is closed and
// small, so this is a value type over a std::variant: every operation dispatches to the family's own method of the
// same name, and the objective (abmll_objective.h) has one code path for both. Copies share tensors.
//
// Sampling hands back an adapter for the decoder's seam (model/linear.h) with G * S groups (sample s of task g is
// group g * S + s), so that an NLL only runs a forward with it and never needs to know the family.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "config/experiment_config.h"
#include "meta/factor_gaussian.h"
#include "meta/task_noise.h"
#include "meta/weight_family.h"
#include "model/linear.h"
#include "model/lora.h"

namespace abmll::meta {

class LoraPosterior {
 public:
  LoraPosterior() = default;
  // `lora`: the LoRA settings of the sites (rank, scaling, targets); factor samples become a BatchedLora of them.
  LoraPosterior(FactorGaussian gaussian, model::LoraSettings lora);
  LoraPosterior(WeightGaussian gaussian, model::LoraSettings lora);

  PosteriorFamily family() const;
  // "factor", "weight (linear scale)", "weight (softplus scale)": for messages.
  std::string description() const;
  bool grouped() const;
  int64_t groups() const;
  const model::LoraSettings& lora() const { return lora_; }
  // The family's containers (nullptr for the other family).
  const FactorGaussian* factor() const { return std::get_if<FactorGaussian>(&family_); }
  const WeightGaussian* weight() const { return std::get_if<WeightGaussian>(&family_); }

  // Every parameter tensor, and its name ("model.layers.0.self_attn.q_proj.a_mean", ...; the part names are the
  // family's), in one stable order.
  std::vector<at::Tensor> tensors() const;
  std::vector<std::string> tensor_names() const;
  LoraPosterior with_tensors(const std::vector<at::Tensor>& tensors) const;
  // phi^0 = theta for G tasks (see the families).
  LoraPosterior posteriors_from(int64_t groups, bool track_prior) const;
  // What the inner loop descends on (grouped posteriors): the factor family's packed_tensors(), the weight
  // family's tensors(); and their gradients summed over the groups, one per prior tensors() entry (undefined where
  // the gradient is).
  std::vector<at::Tensor> inner_tensors() const;
  LoraPosterior with_inner_tensors(const std::vector<at::Tensor>& tensors) const;
  std::vector<at::Tensor> group_sums(const std::vector<at::Tensor>& inner_grads) const;

  // S reparameterised draws per group as an adapter with G * S groups, differentiable in inner_tensors(); group
  // g's noise comes from noise[g] alone (`factor`: the factors' noise; `weight`: the seed of its per-token noise),
  // so a rank's share of a meta-batch draws the noise those tasks draw in the whole.
  std::unique_ptr<model::LinearAdapter> sample(int64_t samples, const TaskNoise& noise) const;
  // The posterior mean as LoRA factors (grouped: G groups; ungrouped: 1), and as an adapter (PEFT export, eval with
  // eval.samples = 0). Both families' means are exactly a LoRA.
  std::map<model::LinearSite, model::LoraFactors> means() const;
  model::BatchedLora mean_adapter() const;

  // KL(this || prior) per group [G] (float32 or wider). Both must be of the same family. `floor`, when given,
  // accumulates how often the weight family's scale floor held (the factor family's never does).
  at::Tensor kl_to(const LoraPosterior& prior, FloorStats* floor = nullptr) const;
  // -log p(theta) under ABML's hyperprior, read for each family (see the families' headers). Ungrouped only.
  at::Tensor hyperprior_neg_log_density(double mean_std, double a0, double b0) const;

 private:
  std::variant<FactorGaussian, WeightGaussian> family_;
  model::LoraSettings lora_;
};

}  // namespace abmll::meta
