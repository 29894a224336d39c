#include "meta/factor_gaussian.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>

#include <fmt/format.h>

#include <cmath>

#include "meta/gaussian.h"
#include "model/weight_names.h"
#include "util/error.h"

namespace abmll::meta {

FactorGaussian::FactorGaussian(std::map<model::LinearSite, SiteGaussian> sites, double scale_floor, bool grouped)
    : sites_(std::move(sites)), scale_floor_(scale_floor), grouped_(grouped) {}

FactorGaussian FactorGaussian::initial_prior(const std::vector<model::LinearSite>& sites,
                                             const model::ModelConfig& config, int64_t rank, double init_scale,
                                             double scale_floor, at::Device device, at::Generator generator) {
  if (init_scale <= scale_floor)
    throw InputError("posterior.init_scale must exceed posterior.scale_floor (the scale is softplus(rho) + floor)");
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  std::map<model::LinearSite, SiteGaussian> out;
  const double rho = rho_from_scale(at::full({}, init_scale, at::kDouble), scale_floor).item<double>();
  for (const auto& site : sites) {
    const auto shape = model::projection_shape(config, site.projection);  // [O, I]
    const int64_t o = shape[0], i = shape[1];
    const double bound = 1.0 / std::sqrt(double(i));
    SiteGaussian g;
    // Drawn on the CPU so the same seed gives the same prior on every device.
    g.a_mean = at::empty({rank, i}, f32).uniform_(-bound, bound, generator).to(device);
    g.a_rho = at::full({rank, i}, rho, f32.device(device));
    g.b_mean = at::zeros({o, rank}, f32.device(device));
    g.b_rho = at::full({o, rank}, rho, f32.device(device));
    for (at::Tensor* t : {&g.a_mean, &g.a_rho, &g.b_mean, &g.b_rho}) t->requires_grad_(true);
    out.emplace(site, std::move(g));
  }
  return FactorGaussian(std::move(out), scale_floor, /*grouped=*/false);
}

FactorGaussian FactorGaussian::posteriors_from(int64_t groups, bool track_prior) const {
  if (grouped_) throw Error("posteriors_from: expected the (ungrouped) prior");
  std::map<model::LinearSite, SiteGaussian> out;
  auto copies = [&](const at::Tensor& t) {
    at::Tensor g = t.unsqueeze(0).expand({groups, -1, -1});
    if (track_prior) return g.clone();                       // a function of theta: second-order gradients
    return g.detach().clone().requires_grad_(true);           // a fresh leaf per task
  };
  for (const auto& [site, g] : sites_)
    out.emplace(site, SiteGaussian{copies(g.a_mean), copies(g.a_rho), copies(g.b_mean), copies(g.b_rho)});
  return FactorGaussian(std::move(out), scale_floor_, /*grouped=*/true);
}

int64_t FactorGaussian::groups() const {
  if (!grouped_ || sites_.empty()) return 1;
  return sites_.begin()->second.a_mean.size(0);
}

std::vector<at::Tensor> FactorGaussian::tensors() const {
  std::vector<at::Tensor> out;
  out.reserve(4 * sites_.size());
  for (const auto& [site, g] : sites_) {
    out.push_back(g.a_mean);
    out.push_back(g.a_rho);
    out.push_back(g.b_mean);
    out.push_back(g.b_rho);
  }
  return out;
}

FactorGaussian FactorGaussian::with_tensors(const std::vector<at::Tensor>& tensors) const {
  if (tensors.size() != 4 * sites_.size()) throw Error("with_tensors: wrong number of tensors");
  std::map<model::LinearSite, SiteGaussian> out;
  size_t k = 0;
  for (const auto& [site, g] : sites_) {
    out.emplace(site, SiteGaussian{tensors[k], tensors[k + 1], tensors[k + 2], tensors[k + 3]});
    k += 4;
  }
  return FactorGaussian(std::move(out), scale_floor_, grouped_);
}

std::map<model::LinearSite, model::LoraFactors> FactorGaussian::sample(int64_t samples, const TaskNoise& noise) const {
  if (!grouped_) throw Error("sample: expected grouped posteriors");
  if (static_cast<int64_t>(noise.size()) != groups())
    throw Error(fmt::format("sample: {} noise generators for {} groups", noise.size(), groups()));
  std::map<model::LinearSite, model::LoraFactors> out;
  for (const auto& [site, g] : sites_) {
    auto draw = [&](const at::Tensor& mean, const at::Tensor& rho) {
      // [G, S, ...] noise: [S, ...] per group from its own generator, on the CPU for device-independent
      // reproducibility.
      const auto options = at::TensorOptions().dtype(mean.scalar_type());
      std::vector<at::Tensor> per_group;
      per_group.reserve(noise.size());
      for (const at::Generator& generator : noise)
        per_group.push_back(at::randn({samples, mean.size(1), mean.size(2)}, generator, options));
      const at::Tensor eps = at::stack(per_group).to(mean.device());
      const at::Tensor w = mean.unsqueeze(1) + scale_from_rho(rho, scale_floor_).unsqueeze(1) * eps;
      return w.reshape({-1, mean.size(1), mean.size(2)});
    };
    out.emplace(site, model::LoraFactors{draw(g.a_mean, g.a_rho), draw(g.b_mean, g.b_rho)});
  }
  return out;
}

std::map<model::LinearSite, model::LoraFactors> FactorGaussian::means() const {
  std::map<model::LinearSite, model::LoraFactors> out;
  for (const auto& [site, g] : sites_) {
    if (grouped_) {
      out.emplace(site, model::LoraFactors{g.a_mean, g.b_mean});
    } else {
      out.emplace(site, model::LoraFactors{g.a_mean.unsqueeze(0), g.b_mean.unsqueeze(0)});
    }
  }
  return out;
}

at::Tensor FactorGaussian::kl_to(const FactorGaussian& prior) const {
  if (!grouped_ || prior.grouped_) throw Error("kl_to: expected grouped posteriors and an ungrouped prior");
  std::vector<at::Tensor> per_site;
  for (const auto& [site, q] : sites_) {
    const auto it = prior.sites_.find(site);
    if (it == prior.sites_.end()) throw Error("kl_to: the prior lacks a site of the posterior");
    const SiteGaussian& p = it->second;
    // [G, ...] entries against the broadcast prior, summed per group.
    auto kl_rows = [&](const at::Tensor& mq, const at::Tensor& rq, const at::Tensor& mp, const at::Tensor& rp) {
      return diagonal_gaussian_kl_terms(mq, scale_from_rho(rq, scale_floor_), mp, scale_from_rho(rp, scale_floor_))
          .flatten(1)
          .sum(1);
    };
    per_site.push_back(kl_rows(q.a_mean, q.a_rho, p.a_mean, p.a_rho) + kl_rows(q.b_mean, q.b_rho, p.b_mean, p.b_rho));
  }
  return at::stack(per_site).sum(0);
}

at::Tensor FactorGaussian::hyperprior_neg_log_density(double mean_std, double a0, double b0) const {
  if (grouped_) throw Error("hyperprior_neg_log_density: expected the (ungrouped) prior");
  at::Tensor total;
  for (const auto& [site, g] : sites_) {
    const at::Tensor term =
        meta::hyperprior_neg_log_density(g.a_mean, scale_from_rho(g.a_rho, scale_floor_), mean_std, a0, b0) +
        meta::hyperprior_neg_log_density(g.b_mean, scale_from_rho(g.b_rho, scale_floor_), mean_std, a0, b0);
    total = total.defined() ? total + term : term;
  }
  return total;
}

void install_factors(model::BatchedLora& lora, const std::map<model::LinearSite, model::LoraFactors>& factors) {
  for (const auto& [site, f] : factors) lora.set_factors(site, f);
}

}  // namespace abmll::meta
