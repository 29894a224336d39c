// The family seam of ABMLL (see lora_posterior.h).
#include "meta/lora_posterior.h"

#include <fmt/format.h>

#include "model/weight_names.h"
#include "util/error.h"

namespace abmll::meta {
namespace {

// std::visit over one variant with a lambda per call site.
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

LoraPosterior::LoraPosterior(FactorGaussian gaussian, model::LoraSettings lora)
    : family_(std::move(gaussian)), lora_(std::move(lora)) {}

LoraPosterior::LoraPosterior(WeightGaussian gaussian, model::LoraSettings lora)
    : family_(std::move(gaussian)), lora_(std::move(lora)) {
  const double s = std::get<WeightGaussian>(family_).form().scaling;
  if (s != lora_.scale())
    throw Error(fmt::format("LoraPosterior: the weight family's scaling {} differs from the LoRA's {}", s,
                            lora_.scale()));
}

PosteriorFamily LoraPosterior::family() const {
  return std::holds_alternative<FactorGaussian>(family_) ? PosteriorFamily::factor : PosteriorFamily::weight;
}

std::string LoraPosterior::description() const {
  if (const WeightGaussian* w = weight())
    return fmt::format("weight ({} scale)", w->form().kind == WeightScale::linear ? "linear" : "softplus");
  return "factor";
}

bool LoraPosterior::grouped() const {
  return std::visit([](const auto& f) { return f.grouped(); }, family_);
}

int64_t LoraPosterior::groups() const {
  return std::visit([](const auto& f) { return f.groups(); }, family_);
}

std::vector<at::Tensor> LoraPosterior::tensors() const {
  return std::visit([](const auto& f) { return f.tensors(); }, family_);
}

std::vector<std::string> LoraPosterior::tensor_names() const {
  static constexpr const char* kFactorParts[4] = {"a_mean", "a_rho", "b_mean", "b_rho"};
  std::vector<std::string> names;
  auto add = [&](const auto& sites, const char* const* parts) {
    for (const auto& [site, unused] : sites) {
      const std::string path = model::projection_path(site.layer, site.projection);
      for (int i = 0; i < 4; ++i) names.push_back(fmt::format("{}.{}", path, parts[i]));
    }
  };
  std::visit(Overloaded{[&](const FactorGaussian& f) { add(f.sites(), kFactorParts); },
                        [&](const WeightGaussian& w) { add(w.sites(), WeightGaussian::kParts); }},
             family_);
  return names;
}

LoraPosterior LoraPosterior::with_tensors(const std::vector<at::Tensor>& tensors) const {
  LoraPosterior out = *this;
  std::visit([&](auto& f) { f = f.with_tensors(tensors); }, out.family_);
  return out;
}

LoraPosterior LoraPosterior::posteriors_from(int64_t groups, bool track_prior) const {
  LoraPosterior out = *this;
  std::visit([&](auto& f) { f = f.posteriors_from(groups, track_prior); }, out.family_);
  return out;
}

std::vector<at::Tensor> LoraPosterior::inner_tensors() const {
  if (const FactorGaussian* f = factor()) return f->packed_tensors();
  return tensors();
}

LoraPosterior LoraPosterior::with_inner_tensors(const std::vector<at::Tensor>& tensors) const {
  if (!factor()) return with_tensors(tensors);
  LoraPosterior out = *this;
  out.family_ = factor()->with_packed_tensors(tensors);
  return out;
}

std::vector<at::Tensor> LoraPosterior::group_sums(const std::vector<at::Tensor>& inner_grads) const {
  if (const FactorGaussian* f = factor()) return f->group_sums(inner_grads);
  std::vector<at::Tensor> out;
  for (const at::Tensor& g : inner_grads) out.push_back(g.defined() ? g.sum(0) : at::Tensor());
  return out;
}

std::unique_ptr<model::LinearAdapter> LoraPosterior::sample(int64_t samples, const TaskNoise& noise) const {
  if (noise.empty()) throw Error("LoraPosterior::sample: no noise generator");
  return std::visit(
      Overloaded{[&](const FactorGaussian& f) -> std::unique_ptr<model::LinearAdapter> {
                   auto lora = std::make_unique<model::BatchedLora>(lora_, f.groups() * samples);
                   install_factors(*lora, f.sample(samples, noise));
                   return lora;
                 },
                 [&](const WeightGaussian& w) -> std::unique_ptr<model::LinearAdapter> {
                   return w.sample(samples, noise);
                 }},
      family_);
}

std::map<model::LinearSite, model::LoraFactors> LoraPosterior::means() const {
  return std::visit([](const auto& f) { return f.means(); }, family_);
}

model::BatchedLora LoraPosterior::mean_adapter() const {
  model::BatchedLora adapter(lora_, grouped() ? groups() : 1);
  install_factors(adapter, means());
  return adapter;
}

at::Tensor LoraPosterior::kl_to(const LoraPosterior& prior, FloorStats* floor) const {
  if (family() != prior.family())
    throw Error(fmt::format("kl_to: a {} posterior against a {} prior", description(), prior.description()));
  return std::visit(Overloaded{[&](const FactorGaussian& f) { return f.kl_to(*prior.factor()); },
                               [&](const WeightGaussian& w) { return w.kl_to(*prior.weight(), floor); }},
                    family_);
}

at::Tensor LoraPosterior::hyperprior_neg_log_density(double mean_std, double a0, double b0) const {
  return std::visit([&](const auto& f) { return f.hyperprior_neg_log_density(mean_std, a0, b0); }, family_);
}

}  // namespace abmll::meta
