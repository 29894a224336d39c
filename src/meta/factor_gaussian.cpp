#include "meta/factor_gaussian.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/split_with_sizes.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "meta/gaussian.h"
#include "model/weight_names.h"
#include "util/error.h"

namespace abmll::meta {
namespace {

// Every site's factors side by side: for each site in order, A's entries then B's, flattened. Sampling, the KL and
// the hyperprior run their elementwise math once on these instead of once per site and factor (a few dozen ops in
// place of a few hundred on a model with many sites), then split the result back. Only the layout differs: each
// entry goes through the same float operations, and each factor's sum covers the same entries, as per site.
struct FlatFactors {
  at::Tensor mean, rho;        // [G, N] (grouped) or [N]
  std::vector<int64_t> sizes;  // entries per factor in that order (R * I for A, O * R for B), summing to N
};

FlatFactors flatten_factors(const std::map<model::LinearSite, SiteGaussian>& sites, bool grouped) {
  const int64_t dim = grouped ? 1 : 0;
  std::vector<at::Tensor> means, rhos;
  FlatFactors out;
  for (const auto& [site, g] : sites) {
    means.push_back(g.a_mean.flatten(dim));
    means.push_back(g.b_mean.flatten(dim));
    rhos.push_back(g.a_rho.flatten(dim));
    rhos.push_back(g.b_rho.flatten(dim));
    out.sizes.push_back(means[means.size() - 2].size(dim));
    out.sizes.push_back(means.back().size(dim));
  }
  out.mean = at::cat(means, dim);
  out.rho = at::cat(rhos, dim);
  return out;
}

}  // namespace

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
  const int64_t groups = this->groups();
  if (static_cast<int64_t>(noise.size()) != groups)
    throw Error(fmt::format("sample: {} noise generators for {} groups", noise.size(), groups));
  if (sites_.empty()) return {};
  // Every site's factors side by side, so that a draw is a few ops on [G, S, N] whatever the number of sites.
  const FlatFactors flat = flatten_factors(sites_, /*grouped=*/true);
  const at::Tensor& mean = flat.mean;  // [G, N]
  const int64_t n = mean.size(1);
  // eps [G, S, N] on the CPU, for device-independent reproducibility. Group g's part of (site, factor) is the
  // randn([S, ...]) of task_noise.h's layout from noise[g], drawn in that layout's order.
  const auto options = at::TensorOptions().dtype(mean.scalar_type());
  at::Tensor eps = at::empty({groups, samples, n}, options);
  if (samples == 1 && std::all_of(flat.sizes.begin(), flat.sizes.end(), [](int64_t k) { return k % 16 == 0; })) {
    // One draw per group. ATen's CPU randn takes one uniform per entry, in order, and transforms them 16 at a
    // time (re-drawing a last partial block), so with every factor a whole number of blocks, one randn over a
    // group's factors side by side gives exactly the numbers of one randn per factor in turn.
    for (int64_t g = 0; g < groups; ++g) eps.select(0, g).normal_(0, 1, noise[g]);
  } else {
    int64_t offset = 0;
    for (const int64_t size : flat.sizes) {
      for (int64_t g = 0; g < groups; ++g)
        eps.select(0, g).narrow(1, offset, size).copy_(at::randn({samples, size}, noise[g], options));
      offset += size;
    }
  }
  const at::Tensor w = mean.unsqueeze(1) + scale_from_rho(flat.rho, scale_floor_).unsqueeze(1) * eps.to(mean.device());
  // Back to each site's [G * S, R, I] and [G * S, O, R]: views of w (split's backward is one concatenation).
  const std::vector<at::Tensor> parts = w.split_with_sizes(flat.sizes, 2);  // [G, S, size] each
  std::map<model::LinearSite, model::LoraFactors> out;
  size_t k = 0;
  for (const auto& [site, g] : sites_) {
    auto as_factor = [&](const at::Tensor& part, const at::Tensor& like) {
      return part.view({groups * samples, like.size(1), like.size(2)});
    };
    out.emplace(site, model::LoraFactors{as_factor(parts[k], g.a_mean), as_factor(parts[k + 1], g.b_mean)});
    k += 2;
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
  if (sites_.empty()) throw Error("kl_to: no sites");
  std::map<model::LinearSite, SiteGaussian> prior_sites;  // the prior's sites of this posterior, in its order
  for (const auto& [site, q] : sites_) {
    const auto it = prior.sites_.find(site);
    if (it == prior.sites_.end()) throw Error("kl_to: the prior lacks a site of the posterior");
    prior_sites.emplace(site, it->second);
  }
  // Every entry of every site at once: [G, N] against the broadcast prior [N].
  const FlatFactors q = flatten_factors(sites_, /*grouped=*/true), p = flatten_factors(prior_sites, false);
  const at::Tensor terms = diagonal_gaussian_kl_terms(q.mean, scale_from_rho(q.rho, scale_floor_), p.mean,
                                                      scale_from_rho(p.rho, scale_floor_));  // [G, N]
  // Summed per group, factor by factor and site by site, in that order (the sums of a per-site computation).
  const std::vector<at::Tensor> parts = terms.split_with_sizes(q.sizes, 1);
  std::vector<at::Tensor> per_site;
  per_site.reserve(sites_.size());
  for (size_t k = 0; k < parts.size(); k += 2) per_site.push_back(parts[k].sum(1) + parts[k + 1].sum(1));
  return at::stack(per_site).sum(0);
}

at::Tensor FactorGaussian::hyperprior_neg_log_density(double mean_std, double a0, double b0) const {
  if (grouped_) throw Error("hyperprior_neg_log_density: expected the (ungrouped) prior");
  if (sites_.empty()) return {};
  // The entries' terms for every site at once; sums and constants factor by factor, as meta::
  // hyperprior_neg_log_density would add them for each factor, then site by site.
  const FlatFactors flat = flatten_factors(sites_, /*grouped=*/false);
  const std::vector<at::Tensor> mean_terms =
      hyperprior_mean_terms(flat.mean, mean_std).split_with_sizes(flat.sizes);
  const std::vector<at::Tensor> scale_terms =
      hyperprior_scale_terms(scale_from_rho(flat.rho, scale_floor_), a0, b0).split_with_sizes(flat.sizes);
  const double mean_constant = hyperprior_mean_constant(mean_std), scale_constant = hyperprior_scale_constant(a0, b0);
  auto factor_term = [&](size_t k) {
    const double entries = static_cast<double>(flat.sizes[k]);
    return (mean_terms[k].sum() + mean_constant * entries) + (scale_terms[k].sum() + scale_constant * entries);
  };
  at::Tensor total;
  for (size_t k = 0; k < flat.sizes.size(); k += 2) {
    const at::Tensor term = factor_term(k) + factor_term(k + 1);
    total = total.defined() ? total + term : term;
  }
  return total;
}

void install_factors(model::BatchedLora& lora, const std::map<model::LinearSite, model::LoraFactors>& factors) {
  for (const auto& [site, f] : factors) lora.set_factors(site, f);
}

}  // namespace abmll::meta
