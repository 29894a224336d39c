#include "meta/point_lora.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <fmt/format.h>

#include <cmath>

#include "model/weight_names.h"
#include "util/error.h"

namespace abmll::meta {

PointLora::PointLora(std::map<model::LinearSite, model::LoraFactors> sites, model::LoraSettings lora, bool grouped)
    : sites_(std::move(sites)), lora_(std::move(lora)), grouped_(grouped) {}

PointLora PointLora::initial(const model::ModelConfig& config, const model::LoraSettings& lora, at::Device device,
                             at::Generator generator) {
  const int64_t rank = lora.rank;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  std::map<model::LinearSite, model::LoraFactors> out;
  for (const auto& site : model::lora_sites(config, lora)) {
    const auto shape = model::projection_shape(config, site.projection);  // [O, I]
    const double bound = 1.0 / std::sqrt(double(shape[1]));
    at::Tensor a = at::empty({rank, shape[1]}, f32).uniform_(-bound, bound, generator).to(device);
    at::Tensor b = at::zeros({shape[0], rank}, f32.device(device));
    out.emplace(site, model::LoraFactors{a.requires_grad_(true), b.requires_grad_(true)});
  }
  return PointLora(std::move(out), lora, /*grouped=*/false);
}

PointLora PointLora::copies(int64_t groups, bool track) const {
  if (grouped_) throw Error("PointLora::copies: expected an ungrouped adapter");
  auto copy = [&](const at::Tensor& t) {
    at::Tensor g = t.unsqueeze(0).expand({groups, -1, -1});
    return track ? g.clone() : g.detach().clone().requires_grad_(true);
  };
  std::map<model::LinearSite, model::LoraFactors> out;
  for (const auto& [site, f] : sites_) out.emplace(site, model::LoraFactors{copy(f.a), copy(f.b)});
  return PointLora(std::move(out), lora_, /*grouped=*/true);
}

std::vector<at::Tensor> PointLora::tensors() const {
  std::vector<at::Tensor> out;
  out.reserve(2 * sites_.size());
  for (const auto& [site, f] : sites_) out.push_back(f.a), out.push_back(f.b);
  return out;
}

PointLora PointLora::with_tensors(const std::vector<at::Tensor>& tensors) const {
  if (tensors.size() != 2 * sites_.size()) throw Error("PointLora::with_tensors: wrong number of tensors");
  std::map<model::LinearSite, model::LoraFactors> out;
  size_t k = 0;
  for (const auto& [site, f] : sites_) {
    out.emplace(site, model::LoraFactors{tensors[k], tensors[k + 1]});
    k += 2;
  }
  return PointLora(std::move(out), lora_, grouped_);
}

std::map<model::LinearSite, model::LoraFactors> PointLora::factors(int64_t groups) const {
  std::map<model::LinearSite, model::LoraFactors> out;
  for (const auto& [site, f] : sites_) {
    if (grouped_ && f.a.size(0) == groups) {
      out.emplace(site, f);
    } else if (grouped_ && f.a.size(0) != 1) {
      throw Error(fmt::format("PointLora::factors: {} groups asked of an adapter with {}", groups, f.a.size(0)));
    } else if (grouped_) {  // one group, repeated
      out.emplace(site, model::LoraFactors{f.a.expand({groups, -1, -1}), f.b.expand({groups, -1, -1})});
    } else {
      out.emplace(site, model::LoraFactors{f.a.unsqueeze(0).expand({groups, -1, -1}),
                                           f.b.unsqueeze(0).expand({groups, -1, -1})});
    }
  }
  return out;
}

std::unique_ptr<model::BatchedLora> PointLora::adapter(int64_t groups) const {
  auto adapter = std::make_unique<model::BatchedLora>(lora_, groups);
  for (auto& [site, f] : factors(groups)) adapter->set_factors(site, std::move(f));
  return adapter;
}

std::vector<std::string> PointLora::names() const {
  std::vector<std::string> out;
  for (const auto& [site, f] : sites_) {
    const std::string path = model::projection_path(site.layer, site.projection);
    out.push_back(path + ".lora_A");
    out.push_back(path + ".lora_B");
  }
  return out;
}

}  // namespace abmll::meta
