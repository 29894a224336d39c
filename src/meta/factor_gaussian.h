// The `factor` variational family of ABMLL.md 2(a): an entry-wise Gaussian over the LoRA factors of every adapted
// site, sigma = softplus(rho) + c. The same container holds the prior theta (one set, no group dimension) and the
// task posteriors phi (a leading group dimension G: one per task of a meta-batch), so that sampling, KLs and
// posterior means are one code path for both.
//
// Dimension letters: G groups (tasks), S Monte Carlo samples per group, R rank, I / O a site's in / out features.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "model/linear.h"
#include "meta/task_noise.h"
#include "model/lora.h"

namespace abmll::meta {

// One site's Gaussian: means and pre-softplus scales of A [.., R, I] and B [.., O, R].
struct SiteGaussian {
  at::Tensor a_mean, a_rho, b_mean, b_rho;
};

class FactorGaussian {
 public:
  FactorGaussian() = default;
  // Grouped: `sites` hold [G, ...] tensors, which are also packed (see packed_tensors()).
  FactorGaussian(std::map<model::LinearSite, SiteGaussian> sites, double scale_floor, bool grouped);

  // The prior theta at initialisation: A's means as PEFT initialises lora_A (uniform in +-1/sqrt(I), drawn from
  // `generator`), B's means 0 (so the posterior-mean adapter starts as the base model), every scale `init_scale`.
  // float32 leaf tensors on `device` that require grad.
  static FactorGaussian initial_prior(const std::vector<model::LinearSite>& sites, const model::ModelConfig& config,
                                      int64_t rank, double init_scale, double scale_floor, at::Device device,
                                      at::Generator generator);

  // G copies of this prior as the starting posteriors phi^0 = theta. With `track_prior` (second-order), they stay
  // differentiable functions of theta; otherwise the packed tensors are new leaves that require grad.
  FactorGaussian posteriors_from(int64_t groups, bool track_prior) const;

  bool grouped() const { return grouped_; }
  int64_t groups() const;
  double scale_floor() const { return scale_floor_; }
  // Each site's tensors. For grouped posteriors made from packed tensors, views of them (made on first use).
  const std::map<model::LinearSite, SiteGaussian>& sites() const;
  // Every parameter tensor (a_mean, a_rho, b_mean, b_rho per site, in site order).
  std::vector<at::Tensor> tensors() const;
  // A container with the same structure holding `tensors` (as returned by tensors(), e.g. after an update).
  FactorGaussian with_tensors(const std::vector<at::Tensor>& tensors) const;

  // Grouped posteriors, packed: the means and the rhos of every site's factors side by side, {mean, rho}, each
  // [G, N] with, per site in order, A's R * I entries then B's O * R (row-major). The inner loop descends on
  // these two tensors instead of four per site, and sampling and the KL read them directly: a step issues a few
  // ops where it issued a few per site. Each entry's arithmetic is the same either way.
  std::vector<at::Tensor> packed_tensors() const;
  FactorGaussian with_packed_tensors(const std::vector<at::Tensor>& packed) const;
  // Gradients w.r.t. packed_tensors() (either may be undefined), summed over the groups and laid out as the
  // prior's tensors(): one per site and part, undefined where the packed gradient is.
  std::vector<at::Tensor> group_sums(const std::vector<at::Tensor>& packed_grads) const;

  // Reparameterised draws for a grouped posterior: S samples per group, as LoRA factors with G * S groups ordered
  // group-major (sample s of group g is group g * S + s). Group g's noise comes from noise[g] alone (see
  // task_noise.h for the layout); noise.size() must be G. Differentiable in the parameters.
  std::map<model::LinearSite, model::LoraFactors> sample(int64_t samples, const TaskNoise& noise) const;
  // The means as LoRA factors (grouped: G groups; ungrouped: 1 group).
  std::map<model::LinearSite, model::LoraFactors> means() const;

  // KL(this || prior) per group [G] (float32), summed over every entry of every site. `this` is grouped, `prior`
  // is not.
  at::Tensor kl_to(const FactorGaussian& prior) const;
  // -log p(theta) under the hyperprior (means ~ N(0, mean_std^2), precisions ~ Gamma(a0, b0)); ungrouped only.
  at::Tensor hyperprior_neg_log_density(double mean_std, double a0, double b0) const;

 private:
  // Where each site's factors sit in the packed tensors.
  struct Layout {
    std::vector<model::LinearSite> sites;
    std::vector<std::array<int64_t, 3>> shapes;  // per site: R, I, O
    std::vector<int64_t> sizes;                  // per site: R * I, then O * R
  };
  static std::shared_ptr<const Layout> layout_of(const std::map<model::LinearSite, SiteGaussian>& sites);
  FactorGaussian(std::shared_ptr<const Layout> layout, at::Tensor mean, at::Tensor rho, double scale_floor);

  // The prior's factors packed as [N] means and rhos (pack of factor_gaussian.cpp), kept for as long as no tensor
  // changes (the inner loop's KLs, the outer KL, the hyperprior and posteriors_from of one step share one), and
  // redone after an in-place update (the outer optimiser's) or under another grad mode.
  std::pair<at::Tensor, at::Tensor> packed_prior() const;
  struct PackedPrior {
    at::Tensor mean, rho;
    std::vector<uint32_t> versions;  // of tensors(), when packed
    bool grad_mode = false;
  };
  mutable std::shared_ptr<const PackedPrior> packed_prior_;

  // Ungrouped, or grouped made from per-site tensors: those. Grouped made from packed tensors: null until sites()
  // makes the views (shared by copies made after that).
  mutable std::shared_ptr<const std::map<model::LinearSite, SiteGaussian>> sites_;
  std::shared_ptr<const Layout> layout_;  // grouped only
  at::Tensor packed_mean_, packed_rho_;   // grouped only, [G, N]
  double scale_floor_ = 0;
  bool grouped_ = false;
};

// Puts `factors` into `lora` (one call per site).
void install_factors(model::BatchedLora& lora, const std::map<model::LinearSite, model::LoraFactors>& factors);

}  // namespace abmll::meta
