// The `weight` variational family of ABMLL.md 2(b) as a container of every adapted site's parameters: an
// entry-wise Gaussian over the site's weight update dW [O, I] with mean M = s B_mu A_mu and scale S (linear:
// s B_sigma A_sigma + c; softplus: softplus(s B_sigma A_sigma) + c). It is the sibling of FactorGaussian
// (factor_gaussian.h) and offers the same operations, so that LoraPosterior (lora_posterior.h) can run either
// through one ABMLL objective. The same container holds the prior theta (no group dimension) and the task
// posteriors phi (a leading group dimension G).
//
// Hyperprior (ABML's, read for this family): theta defines, per weight entry, a Gaussian N(M_oi, S_oi^2). As in
// ABML the prior's mean gets N(0, mean_std^2) and its precision tau = 1 / S^2 gets Gamma(a0, b0), entry by entry
// over the dense O x I (S^2 floored at c^2 as in the KL), so -log p(theta) is
//   sum_oi [ M_oi^2 / (2 mean_std^2) + b0 / V_oi + (a0 - 1) log V_oi ] + O I (constants),  V = max(S^2, c^2).
// It is computed tile by tile like the KL (weight_space_hyperprior). It regularises what the prior means, not the
// factors themselves (whose product alone is identified).
//
// Dimension letters: G groups (tasks), S Monte Carlo samples per group, R rank, I / O a site's in / out features.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "meta/task_noise.h"
#include "meta/weight_gaussian.h"
#include "meta/weight_lora.h"
#include "model/linear.h"
#include "model/lora.h"
#include "model/model_config.h"

namespace abmll::meta {

// How often the scale floor c held in the KLs evaluated (ABMLL.md 2(b): with `linear`, S crosses zero).
struct FloorStats {
  at::Tensor hits;           // entries of S_q and S_p with S^2 < c^2: a 0-dim int64 tensor on the factors' device,
                             // added to where the KLs run (undefined until one does; util/read_scalars.h reads it)
  std::int64_t entries = 0;  // entries of S_q and S_p looked at
};

class WeightGaussian {
 public:
  WeightGaussian() = default;
  WeightGaussian(std::map<model::LinearSite, WeightGaussianFactors> sites, WeightScaleForm form, bool grouped);

  // The prior theta at initialisation, float32 leaves on `device` that require grad, drawn from `generator` on the
  // CPU (the same seed gives the same prior on every device):
  //  - mean pair as PEFT initialises a LoRA: A_mu uniform in +-1/sqrt(I), B_mu = 0, so M = 0 and the
  //    posterior-mean adapter starts as the base model;
  //  - scale pair so that S starts near `init_scale` everywhere: B_sigma = beta (every entry), A_sigma =
  //    alpha (1 + e u), u ~ U(-1, 1), alpha = 1/sqrt(I), with s R alpha beta = z0, the pre-activation giving
  //    S = init_scale (linear: z0 = init_scale - c; softplus: z0 = softplus^-1(init_scale - c)). The
  //    pre-activation is then z0 (1 + e mean_r u_ri); e = 0.1 for linear, and 0.1 over S's elasticity in z for
  //    softplus, so that S is within about 10% of init_scale in both forms. The perturbation breaks the symmetry
  //    between the R rank components: with identical rows of A_sigma they would get identical gradients and S
  //    would stay rank one for ever. A constant B_sigma keeps S's spread small; A_sigma's rows differ, which
  //    suffices.
  // Throws InputError when init_scale does not exceed the floor c.
  static WeightGaussian initial_prior(const std::vector<model::LinearSite>& sites, const model::ModelConfig& config,
                                      int64_t rank, WeightScaleForm form, double init_scale, at::Device device,
                                      at::Generator generator);

  // G copies of this prior as phi^0 = theta (differentiable in theta with `track_prior`, fresh leaves otherwise).
  WeightGaussian posteriors_from(int64_t groups, bool track_prior) const;

  bool grouped() const { return grouped_; }
  int64_t groups() const;
  const WeightScaleForm& form() const { return form_; }
  const std::map<model::LinearSite, WeightGaussianFactors>& sites() const { return sites_; }
  // b_mu, a_mu, b_sigma, a_sigma per site, in site order; names as in kParts.
  std::vector<at::Tensor> tensors() const;
  static constexpr const char* kParts[4] = {"b_mu", "a_mu", "b_sigma", "a_sigma"};
  WeightGaussian with_tensors(const std::vector<at::Tensor>& tensors) const;

  // S local-reparameterised draws per group of a grouped posterior: an adapter with G * S groups, group-major,
  // whose group g noise comes from one 64-bit seed drawn from noise[g] (see WeightLora, task_noise.h); noise.size()
  // must be G. Differentiable in tensors().
  std::unique_ptr<WeightLora> sample(int64_t samples, const TaskNoise& noise) const;
  // The means as LoRA factors: M = s B_mu A_mu is exactly a LoRA with A = A_mu, B = B_mu (grouped: G groups).
  std::map<model::LinearSite, model::LoraFactors> means() const;

  // KL(this || prior) per group [G] in float32 (float64 for float64 parameters), each site's by the tiled
  // weight-space KL. `floor`, when given, accumulates how often the scale floor held.
  at::Tensor kl_to(const WeightGaussian& prior, FloorStats* floor = nullptr) const;
  // -log p(theta) under the hyperprior described above; ungrouped only.
  at::Tensor hyperprior_neg_log_density(double mean_std, double a0, double b0) const;

 private:
  std::map<model::LinearSite, WeightGaussianFactors> sites_;
  WeightScaleForm form_;
  bool grouped_ = false;
};

}  // namespace abmll::meta
