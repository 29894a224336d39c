#include "meta/factor_gaussian.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
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

// Every site's factors side by side: for each site in order, A's entries then B's, flattened ([G, N] grouped,
// [N] not). Sampling, the KL and the hyperprior run their elementwise math once on these instead of once per site
// and factor (a few dozen ops in place of a few hundred on a model with many sites), then split the result back.
// Only the layout differs: each entry goes through the same float operations, and each factor's sum covers the
// same entries, as per site.
std::pair<at::Tensor, at::Tensor> pack(const std::map<model::LinearSite, SiteGaussian>& sites, bool grouped) {
  const int64_t dim = grouped ? 1 : 0;
  std::vector<at::Tensor> means, rhos;
  for (const auto& [site, g] : sites) {
    means.push_back(g.a_mean.flatten(dim));
    means.push_back(g.b_mean.flatten(dim));
    rhos.push_back(g.a_rho.flatten(dim));
    rhos.push_back(g.b_rho.flatten(dim));
  }
  return {at::cat(means, dim), at::cat(rhos, dim)};
}

}  // namespace

std::shared_ptr<const FactorGaussian::Layout> FactorGaussian::layout_of(
    const std::map<model::LinearSite, SiteGaussian>& sites) {
  auto layout = std::make_shared<Layout>();
  for (const auto& [site, g] : sites) {
    const int64_t r = g.a_mean.size(-2), i = g.a_mean.size(-1), o = g.b_mean.size(-2);
    layout->sites.push_back(site);
    layout->shapes.push_back({r, i, o});
    layout->sizes.push_back(r * i);
    layout->sizes.push_back(o * r);
  }
  return layout;
}

FactorGaussian::FactorGaussian(std::map<model::LinearSite, SiteGaussian> sites, double scale_floor, bool grouped)
    : sites_(std::make_shared<const std::map<model::LinearSite, SiteGaussian>>(std::move(sites))),
      scale_floor_(scale_floor),
      grouped_(grouped) {
  if (grouped_) {
    if (sites_->empty()) throw Error("FactorGaussian: grouped posteriors without sites");
    layout_ = layout_of(*sites_);
    std::tie(packed_mean_, packed_rho_) = pack(*sites_, /*grouped=*/true);
  }
}

FactorGaussian::FactorGaussian(std::shared_ptr<const Layout> layout, at::Tensor mean, at::Tensor rho,
                               double scale_floor)
    : layout_(std::move(layout)),
      packed_mean_(std::move(mean)),
      packed_rho_(std::move(rho)),
      scale_floor_(scale_floor),
      grouped_(true) {
  int64_t n = 0;
  for (const int64_t size : layout_->sizes) n += size;
  for (const at::Tensor* t : {&packed_mean_, &packed_rho_})
    if (!t->defined() || t->dim() != 2 || t->size(1) != n || t->size(0) != packed_mean_.size(0))
      throw Error(fmt::format("FactorGaussian: packed tensors must be [G, {}]", n));
}

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
  if (sites().empty()) throw Error("posteriors_from: the prior has no sites");
  const auto [mean, rho] = packed_prior();  // [N]
  auto copies = [&](const at::Tensor& t) {
    at::Tensor g = t.unsqueeze(0).expand({groups, -1});
    if (track_prior) return g.clone();                       // a function of theta: second-order gradients
    return g.detach().clone().requires_grad_(true);           // a fresh leaf per task
  };
  return FactorGaussian(layout_of(sites()), copies(mean), copies(rho), scale_floor_);
}

std::pair<at::Tensor, at::Tensor> FactorGaussian::packed_prior() const {
  if (grouped_) throw Error("packed_prior: expected the (ungrouped) prior");
  std::vector<uint32_t> versions;
  versions.reserve(4 * sites().size());
  for (const auto& [site, g] : sites())
    for (const at::Tensor* t : {&g.a_mean, &g.a_rho, &g.b_mean, &g.b_rho}) versions.push_back(t->_version());
  const bool grad_mode = at::GradMode::is_enabled();
  if (!packed_prior_ || packed_prior_->versions != versions || packed_prior_->grad_mode != grad_mode) {
    auto [mean, rho] = pack(sites(), /*grouped=*/false);
    packed_prior_ = std::make_shared<const PackedPrior>(PackedPrior{mean, rho, std::move(versions), grad_mode});
  }
  return {packed_prior_->mean, packed_prior_->rho};
}

int64_t FactorGaussian::groups() const { return grouped_ ? packed_mean_.size(0) : 1; }

const std::map<model::LinearSite, SiteGaussian>& FactorGaussian::sites() const {
  if (!sites_ && !grouped_) {
    static const std::map<model::LinearSite, SiteGaussian> none;  // a default-constructed container
    return none;
  }
  if (!sites_) {
    // Views of the packed tensors, [G, R, I] and [G, O, R] per site.
    const int64_t g = packed_mean_.size(0);
    const std::vector<at::Tensor> means = packed_mean_.split_with_sizes(layout_->sizes, 1);
    const std::vector<at::Tensor> rhos = packed_rho_.split_with_sizes(layout_->sizes, 1);
    auto views = std::make_shared<std::map<model::LinearSite, SiteGaussian>>();
    for (size_t k = 0; k < layout_->sites.size(); ++k) {
      const auto [r, i, o] = layout_->shapes[k];
      views->emplace(layout_->sites[k],
                     SiteGaussian{means[2 * k].view({g, r, i}), rhos[2 * k].view({g, r, i}),
                                  means[2 * k + 1].view({g, o, r}), rhos[2 * k + 1].view({g, o, r})});
    }
    sites_ = std::move(views);
  }
  return *sites_;
}

std::vector<at::Tensor> FactorGaussian::tensors() const {
  std::vector<at::Tensor> out;
  out.reserve(4 * sites().size());
  for (const auto& [site, g] : sites()) {
    out.push_back(g.a_mean);
    out.push_back(g.a_rho);
    out.push_back(g.b_mean);
    out.push_back(g.b_rho);
  }
  return out;
}

FactorGaussian FactorGaussian::with_tensors(const std::vector<at::Tensor>& tensors) const {
  if (tensors.size() != 4 * sites().size()) throw Error("with_tensors: wrong number of tensors");
  std::map<model::LinearSite, SiteGaussian> out;
  size_t k = 0;
  for (const auto& [site, g] : sites()) {
    out.emplace(site, SiteGaussian{tensors[k], tensors[k + 1], tensors[k + 2], tensors[k + 3]});
    k += 4;
  }
  return FactorGaussian(std::move(out), scale_floor_, grouped_);
}

std::vector<at::Tensor> FactorGaussian::packed_tensors() const {
  if (!grouped_) throw Error("packed_tensors: expected grouped posteriors");
  return {packed_mean_, packed_rho_};
}

FactorGaussian FactorGaussian::with_packed_tensors(const std::vector<at::Tensor>& packed) const {
  if (!grouped_) throw Error("with_packed_tensors: expected grouped posteriors");
  if (packed.size() != 2) throw Error("with_packed_tensors: expected {mean, rho}");
  return FactorGaussian(layout_, packed[0], packed[1], scale_floor_);
}

std::vector<at::Tensor> FactorGaussian::group_sums(const std::vector<at::Tensor>& packed_grads) const {
  if (!grouped_ || packed_grads.size() != 2) throw Error("group_sums: expected the gradients of packed_tensors()");
  const size_t sites = layout_->sites.size();
  // [G, N] -> [N] -> one [R * I] or [O * R] piece per factor (the sum of each entry over groups, as per site).
  std::vector<std::vector<at::Tensor>> pieces;
  for (const at::Tensor& g : packed_grads)
    pieces.push_back(g.defined() ? g.sum(0).split_with_sizes(layout_->sizes) : std::vector<at::Tensor>{});
  auto piece = [&](size_t kind, size_t k, int64_t rows, int64_t cols) {
    return pieces[kind].empty() ? at::Tensor() : pieces[kind][k].view({rows, cols});
  };
  std::vector<at::Tensor> out;
  out.reserve(4 * sites);
  for (size_t k = 0; k < sites; ++k) {
    const auto [r, i, o] = layout_->shapes[k];
    out.push_back(piece(0, 2 * k, r, i));      // a_mean
    out.push_back(piece(1, 2 * k, r, i));      // a_rho
    out.push_back(piece(0, 2 * k + 1, o, r));  // b_mean
    out.push_back(piece(1, 2 * k + 1, o, r));  // b_rho
  }
  return out;
}

std::map<model::LinearSite, model::LoraFactors> FactorGaussian::sample(int64_t samples, const TaskNoise& noise) const {
  if (!grouped_) throw Error("sample: expected grouped posteriors");
  const int64_t groups = this->groups();
  if (static_cast<int64_t>(noise.size()) != groups)
    throw Error(fmt::format("sample: {} noise generators for {} groups", noise.size(), groups));
  const std::vector<int64_t>& sizes = layout_->sizes;
  const int64_t n = packed_mean_.size(1);
  const at::Device device = packed_mean_.device();
  const auto options = at::TensorOptions().dtype(packed_mean_.scalar_type());
  at::Tensor eps = at::empty({groups, samples, n}, options.device(device));  // [G, S, N]
  if (!device.is_cpu()) {
    // On a GPU, group g's noise is one draw on the device from a generator seeded by noise[g] (task_noise.h): at 8B
    // a host draw would be 27 MB of float32 per task and sample (~40 ms of host time each), then a copy that waits
    // for the device.
    for (int64_t g = 0; g < groups; ++g) eps.select(0, g).normal_(0, 1, seeded_generator(draw_seed(noise[g]), device));
  } else if (samples == 1 && std::all_of(sizes.begin(), sizes.end(), [](int64_t k) { return k % 16 == 0; })) {
    // On the CPU, group g's part of (site, factor) is the randn([S, ...]) of task_noise.h's layout from noise[g],
    // drawn in that layout's order. Here in one draw per group: ATen's CPU randn takes one uniform per entry, in
    // order, and transforms them 16 at a time (re-drawing a last partial block), so with every factor a whole number
    // of blocks, one randn over a group's factors side by side gives exactly the numbers of one randn per factor in
    // turn.
    for (int64_t g = 0; g < groups; ++g) eps.select(0, g).normal_(0, 1, noise[g]);
  } else {
    int64_t offset = 0;
    for (const int64_t size : sizes) {
      for (int64_t g = 0; g < groups; ++g)
        eps.select(0, g).narrow(1, offset, size).copy_(at::randn({samples, size}, noise[g], options));
      offset += size;
    }
  }
  const at::Tensor w = packed_mean_.unsqueeze(1) + scale_from_rho(packed_rho_, scale_floor_).unsqueeze(1) * eps;
  // Back to each site's [G * S, R, I] and [G * S, O, R]: views of w (split's backward is one concatenation).
  const std::vector<at::Tensor> parts = w.split_with_sizes(sizes, 2);  // [G, S, size] each
  std::map<model::LinearSite, model::LoraFactors> out;
  for (size_t k = 0; k < layout_->sites.size(); ++k) {
    const auto [r, i, o] = layout_->shapes[k];
    out.emplace(layout_->sites[k], model::LoraFactors{parts[2 * k].view({groups * samples, r, i}),
                                                      parts[2 * k + 1].view({groups * samples, o, r})});
  }
  return out;
}

std::map<model::LinearSite, model::LoraFactors> FactorGaussian::means() const {
  std::map<model::LinearSite, model::LoraFactors> out;
  for (const auto& [site, g] : sites()) {
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
  std::map<model::LinearSite, SiteGaussian> prior_sites;  // the prior's sites of this posterior
  for (const model::LinearSite& site : layout_->sites) {
    const auto it = prior.sites().find(site);
    if (it == prior.sites().end()) throw Error("kl_to: the prior lacks a site of the posterior");
    prior_sites.emplace(site, it->second);
  }
  // Every entry of every site at once: [G, N] against the broadcast prior [N].
  const auto [p_mean, p_rho] =
      prior_sites.size() == prior.sites().size() ? prior.packed_prior() : pack(prior_sites, /*grouped=*/false);
  const at::Tensor terms = diagonal_gaussian_kl_terms(packed_mean_, scale_from_rho(packed_rho_, scale_floor_), p_mean,
                                                      scale_from_rho(p_rho, scale_floor_));  // [G, N]
  // Summed per group, factor by factor and site by site, in that order (the sums of a per-site computation).
  const std::vector<at::Tensor> parts = terms.split_with_sizes(layout_->sizes, 1);
  std::vector<at::Tensor> per_site;
  per_site.reserve(layout_->sites.size());
  for (size_t k = 0; k < parts.size(); k += 2) per_site.push_back(parts[k].sum(1) + parts[k + 1].sum(1));
  return at::stack(per_site).sum(0);
}

at::Tensor FactorGaussian::hyperprior_neg_log_density(double mean_std, double a0, double b0) const {
  if (grouped_) throw Error("hyperprior_neg_log_density: expected the (ungrouped) prior");
  if (sites().empty()) return {};
  // The entries' terms for every site at once; sums and constants factor by factor, as meta::
  // hyperprior_neg_log_density would add them for each factor, then site by site.
  const auto [mean, rho] = packed_prior();
  const std::vector<int64_t> sizes = layout_of(sites())->sizes;
  const std::vector<at::Tensor> mean_terms = hyperprior_mean_terms(mean, mean_std).split_with_sizes(sizes);
  const std::vector<at::Tensor> scale_terms =
      hyperprior_scale_terms(scale_from_rho(rho, scale_floor_), a0, b0).split_with_sizes(sizes);
  const double mean_constant = hyperprior_mean_constant(mean_std), scale_constant = hyperprior_scale_constant(a0, b0);
  auto factor_term = [&](size_t k) {
    const double entries = static_cast<double>(sizes[k]);
    return (mean_terms[k].sum() + mean_constant * entries) + (scale_terms[k].sum() + scale_constant * entries);
  };
  at::Tensor total;
  for (size_t k = 0; k < sizes.size(); k += 2) {
    const at::Tensor term = factor_term(k) + factor_term(k + 1);
    total = total.defined() ? total + term : term;
  }
  return total;
}

void install_factors(model::BatchedLora& lora, const std::map<model::LinearSite, model::LoraFactors>& factors) {
  for (const auto& [site, f] : factors) lora.set_factors(site, f);
}

}  // namespace abmll::meta
