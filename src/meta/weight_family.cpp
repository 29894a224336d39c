// The weight family's container (see weight_family.h).
#include "meta/weight_family.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
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

// Rows of the dense O x I tiles in the KL and hyperprior: [256, I] float32 tiles (a few MB at I = 4096).
constexpr int64_t kTileRows = 256;

}  // namespace

WeightGaussian::WeightGaussian(std::map<model::LinearSite, WeightGaussianFactors> sites, WeightScaleForm form,
                               bool grouped)
    : sites_(std::move(sites)), form_(form), grouped_(grouped) {}

WeightGaussian WeightGaussian::initial_prior(const std::vector<model::LinearSite>& sites,
                                             const model::ModelConfig& config, int64_t rank, WeightScaleForm form,
                                             double init_scale, at::Device device, at::Generator generator) {
  if (init_scale <= form.floor)
    throw InputError(fmt::format("posterior.init_scale ({}) must exceed posterior.scale_floor ({}): the weight "
                                 "family's scale starts at init_scale and never goes below the floor",
                                 init_scale, form.floor));
  // Pre-activation z0 of S = init_scale (see the header).
  const double z0 = form.kind == WeightScale::linear
                        ? init_scale - form.floor
                        : rho_from_scale(at::full({}, init_scale, at::kDouble), form.floor).item<double>();
  // Relative perturbation of A_sigma: 0.1, divided by S's elasticity in z at z0 (1 for linear, about |z0| for a
  // softplus deep in its exponential tail), so that S stays within about 10% of init_scale in both forms.
  const double slope = form.kind == WeightScale::linear ? 1.0 : 1.0 / (1.0 + std::exp(-z0));
  const double spread = 0.1 / std::max(1.0, std::abs(slope * z0 / init_scale));
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  std::map<model::LinearSite, WeightGaussianFactors> out;
  for (const auto& site : sites) {
    const auto shape = model::projection_shape(config, site.projection);  // [O, I]
    const int64_t o = shape[0], i = shape[1];
    const double alpha = 1.0 / std::sqrt(double(i));
    const double beta = z0 / (form.scaling * double(rank) * alpha);
    WeightGaussianFactors f;
    f.a_mu = at::empty({rank, i}, f32).uniform_(-alpha, alpha, generator).to(device);
    f.b_mu = at::zeros({o, rank}, f32.device(device));
    f.a_sigma = (alpha * (1 + spread * at::empty({rank, i}, f32).uniform_(-1, 1, generator))).to(device);
    f.b_sigma = at::full({o, rank}, beta, f32.device(device));
    for (at::Tensor* t : {&f.b_mu, &f.a_mu, &f.b_sigma, &f.a_sigma}) t->requires_grad_(true);
    out.emplace(site, std::move(f));
  }
  return WeightGaussian(std::move(out), form, /*grouped=*/false);
}

WeightGaussian WeightGaussian::posteriors_from(int64_t groups, bool track_prior) const {
  if (grouped_) throw Error("posteriors_from: expected the (ungrouped) prior");
  auto copies = [&](const at::Tensor& t) {
    at::Tensor g = t.unsqueeze(0).expand({groups, -1, -1});
    if (track_prior) return g.clone();
    return g.detach().clone().requires_grad_(true);
  };
  std::map<model::LinearSite, WeightGaussianFactors> out;
  for (const auto& [site, f] : sites_)
    out.emplace(site, WeightGaussianFactors{copies(f.b_mu), copies(f.a_mu), copies(f.b_sigma), copies(f.a_sigma)});
  return WeightGaussian(std::move(out), form_, /*grouped=*/true);
}

int64_t WeightGaussian::groups() const {
  if (!grouped_ || sites_.empty()) return 1;
  return sites_.begin()->second.b_mu.size(0);
}

std::vector<at::Tensor> WeightGaussian::tensors() const {
  std::vector<at::Tensor> out;
  out.reserve(4 * sites_.size());
  for (const auto& [site, f] : sites_)
    for (const at::Tensor* t : {&f.b_mu, &f.a_mu, &f.b_sigma, &f.a_sigma}) out.push_back(*t);
  return out;
}

WeightGaussian WeightGaussian::with_tensors(const std::vector<at::Tensor>& tensors) const {
  if (tensors.size() != 4 * sites_.size()) throw Error("with_tensors: wrong number of tensors");
  std::map<model::LinearSite, WeightGaussianFactors> out;
  size_t k = 0;
  for (const auto& [site, f] : sites_) {
    out.emplace(site, WeightGaussianFactors{tensors[k], tensors[k + 1], tensors[k + 2], tensors[k + 3]});
    k += 4;
  }
  return WeightGaussian(std::move(out), form_, grouped_);
}

std::unique_ptr<WeightLora> WeightGaussian::sample(int64_t samples, const TaskNoise& noise) const {
  if (!grouped_) throw Error("sample: expected grouped posteriors");
  if (static_cast<int64_t>(noise.size()) != groups())
    throw Error(fmt::format("sample: {} noise generators for {} groups", noise.size(), groups()));
  // One draw from each task's stream seeds all of that task's noise in this sample.
  std::vector<std::uint64_t> seeds;
  seeds.reserve(noise.size());
  for (const at::Generator& generator : noise) seeds.push_back(draw_seed(generator));
  auto adapter = std::make_unique<WeightLora>(form_, std::move(seeds), samples);
  for (const auto& [site, f] : sites_) adapter->set_site(site, f);
  return adapter;
}

std::map<model::LinearSite, model::LoraFactors> WeightGaussian::means() const {
  std::map<model::LinearSite, model::LoraFactors> out;
  for (const auto& [site, f] : sites_) {
    if (grouped_) {
      out.emplace(site, model::LoraFactors{f.a_mu, f.b_mu});
    } else {
      out.emplace(site, model::LoraFactors{f.a_mu.unsqueeze(0), f.b_mu.unsqueeze(0)});
    }
  }
  return out;
}

at::Tensor WeightGaussian::kl_to(const WeightGaussian& prior, FloorStats* floor) const {
  if (!grouped_ || prior.grouped_) throw Error("kl_to: expected grouped posteriors and an ungrouped prior");
  std::vector<at::Tensor> per_group;
  for (int64_t g = 0; g < groups(); ++g) {
    at::Tensor total;
    for (const auto& [site, q] : sites_) {
      const auto it = prior.sites_.find(site);
      if (it == prior.sites_.end()) throw Error("kl_to: the prior lacks a site of the posterior");
      const WeightGaussianFactors qg{q.b_mu[g], q.a_mu[g], q.b_sigma[g], q.a_sigma[g]};
      at::Tensor hits;
      const at::Tensor kl = weight_space_kl(qg, it->second, form_, kTileRows, floor ? &hits : nullptr);
      if (floor) {
        floor->hits = floor->hits.defined() ? floor->hits + hits : hits;
        floor->entries += 2 * q.b_mu.size(1) * q.a_mu.size(2);
      }
      total = total.defined() ? total + kl : kl;
    }
    per_group.push_back(total);
  }
  return at::stack(per_group);
}

at::Tensor WeightGaussian::hyperprior_neg_log_density(double mean_std, double a0, double b0) const {
  if (grouped_) throw Error("hyperprior_neg_log_density: expected the (ungrouped) prior");
  at::Tensor total;
  for (const auto& [site, f] : sites_) {
    const at::Tensor term = weight_space_hyperprior(f, form_, mean_std, a0, b0, kTileRows);
    total = total.defined() ? total + term : term;
  }
  return total;
}

}  // namespace abmll::meta
