// The weight family's local-reparameterisation adapter (see weight_lora.h).
#include "meta/weight_lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/floor_divide.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/nonzero.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/sqrt.h>
#include <ATen/ops/square.h>
#include <ATen/ops/zeros.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "model/weight_names.h"
#include "util/error.h"

namespace abmll::meta {

std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

WeightLora::WeightLora(WeightScaleForm form, int64_t posteriors, int64_t samples, std::uint64_t seed)
    : form_(form), posteriors_(posteriors), samples_(samples), seed_(seed) {
  if (posteriors < 1 || samples < 1)
    throw Error(fmt::format("WeightLora: {} posteriors x {} samples", posteriors, samples));
}

void WeightLora::set_site(const model::LinearSite& site, WeightGaussianFactors f) {
  const bool ok = f.b_mu.defined() && f.a_mu.defined() && f.b_sigma.defined() && f.a_sigma.defined() &&
                  f.b_mu.dim() == 3 && f.a_mu.dim() == 3 && f.b_mu.size(0) == posteriors_ &&
                  f.a_mu.size(0) == posteriors_ && f.b_sigma.sizes() == f.b_mu.sizes() &&
                  f.a_sigma.sizes() == f.a_mu.sizes() && f.b_mu.size(2) == f.a_mu.size(1);
  if (!ok)
    throw Error(fmt::format("WeightLora: {}: factors must be b [G={}, O, R] and a [G, R, I] for mean and scale",
                            model::projection_path(site.layer, site.projection), posteriors_));
  sites_[site] = std::move(f);
}

void WeightLora::set_group_of_sequence(const at::Tensor& group_of_sequence) {
  ++forward_;
  if (!group_of_sequence.defined()) {
    posterior_of_sequence_ = at::Tensor();
    return;
  }
  if (group_of_sequence.dim() != 1 || group_of_sequence.scalar_type() != at::kLong)
    throw Error("WeightLora: group_of_sequence must be [B] int64");
  const at::Tensor g = group_of_sequence.cpu();
  if (g.numel() > 0 && (g.min().item<int64_t>() < 0 || g.max().item<int64_t>() >= groups()))
    throw Error(fmt::format("WeightLora: a group is outside [0, {})", groups()));
  posterior_of_sequence_ = at::floor_divide(g, samples_);
}

at::Tensor WeightLora::noise(std::uint64_t seed, std::int64_t forward, const model::LinearSite& site,
                             at::IntArrayRef shape, const at::TensorOptions& options) {
  const std::uint64_t key =
      static_cast<std::uint64_t>(site.layer) * 8 + static_cast<std::uint64_t>(site.projection) + 1;
  const std::uint64_t site_seed = mix64(mix64(seed ^ static_cast<std::uint64_t>(forward)) ^ mix64(key));
  at::Generator gen;
  if (options.device().is_cpu()) {
    gen = at::detail::createCPUGenerator(site_seed);
  } else {
    gen = at::globalContext().defaultGenerator(options.device()).clone();
    gen.set_current_seed(site_seed);
  }
  return at::randn(shape, gen, options);
}

at::Tensor WeightLora::delta(const at::Tensor& x, const model::LinearSite& site) const {
  const auto it = sites_.find(site);
  if (it == sites_.end()) return {};
  const WeightGaussianFactors& f = it->second;
  const int64_t batch = x.size(0), in = f.a_mu.size(2), out = f.b_mu.size(1);
  if (x.dim() != 3 || x.size(2) != in)
    throw Error(fmt::format("WeightLora: {}: input [{}] does not match A [{}]",
                            model::projection_path(site.layer, site.projection), fmt::join(x.sizes(), ", "),
                            fmt::join(f.a_mu.sizes(), ", ")));
  at::Tensor posterior = posterior_of_sequence_;
  if (!posterior.defined()) {
    if (groups() > 1) throw Error("WeightLora: several adapter groups but group_of_sequence is unset");
    posterior = at::zeros({batch}, at::kLong);
  }
  if (posterior.size(0) != batch)
    throw Error(fmt::format("WeightLora: group_of_sequence is {} for a batch of {}", posterior.size(0), batch));
  const at::Tensor xf = x.to(f.b_mu.scalar_type());  // [B, T, I]
  const double s = form_.scaling;

  // Mean: each sequence's own factors, one batched matmul (as BatchedLora, for the same reasons).
  const at::Tensor index = posterior.to(x.device());
  const at::Tensor a = f.a_mu.index_select(0, index), b = f.b_mu.index_select(0, index);  // [B, R, I], [B, O, R]
  const at::Tensor mean = at::bmm(at::bmm(xf, a.transpose(1, 2)) * s, b.transpose(1, 2));  // [B, T, O]

  // Variance: per posterior over its sequences' tokens, so that the low-rank pieces (K [I, R^2]) are built once per
  // posterior rather than once per sequence.
  at::Tensor v = at::zeros({batch, x.size(1), out}, mean.options());
  for (int64_t g = 0; g < posteriors_; ++g) {
    const at::Tensor rows = at::nonzero(posterior == g).squeeze(1);
    if (rows.numel() == 0) continue;
    const at::Tensor rows_here = rows.to(x.device());
    const at::Tensor xg = xf.index_select(0, rows_here);  // [Bg, T, I]
    const WeightGaussianFactors fg{f.b_mu[g], f.a_mu[g], f.b_sigma[g], f.a_sigma[g]};
    const at::Tensor vg = local_reparam_variance(xg.reshape({-1, in}), fg, form_).reshape({rows.size(0), -1, out});
    v = v.index_copy(0, rows_here, vg);
  }
  // v >= c^2 sum_i x_i^2 whenever every S^2 >= c^2; the bound also keeps sqrt's gradient finite where the low-rank
  // expansion rounds to 0 (and 1e-30 where x = 0).
  const at::Tensor bound = (form_.floor * form_.floor) * at::square(xf).sum(-1, /*keepdim=*/true) + 1e-30;
  const at::Tensor eps = noise(seed_, forward_, site, {batch, x.size(1), out}, mean.options());
  return (mean + at::sqrt(at::maximum(v, bound)) * eps).to(x.scalar_type());
}

std::vector<at::Tensor> WeightLora::trainable_tensors() const {
  std::vector<at::Tensor> out;
  for (const auto& [site, f] : sites_)
    for (const at::Tensor* t : {&f.b_mu, &f.a_mu, &f.b_sigma, &f.a_sigma})
      if (t->requires_grad()) out.push_back(*t);
  return out;
}

}  // namespace abmll::meta
