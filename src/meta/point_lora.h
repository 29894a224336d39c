// A deterministic LoRA (a point estimate, no distribution): what the baselines `lora`, `fomaml` and `reptile`
// learn and adapt (ABMLL.md section 5). The same container holds the learned initialisation theta (ungrouped: one
// adapter) and the per-task adapted copies (a leading group dimension G: one per task of a meta-batch).
//
// Dimension letters: G groups (tasks), R rank, I / O a site's in / out features.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/linear.h"
#include "model/lora.h"
#include "model/model_config.h"

namespace abmll::meta {

class PointLora {
 public:
  PointLora() = default;
  PointLora(std::map<model::LinearSite, model::LoraFactors> sites, model::LoraSettings lora, bool grouped);

  // PEFT's initialisation of a new adapter: A uniform in +-1/sqrt(I) drawn from `generator` (on the CPU, so a seed
  // gives the same adapter on every device), B = 0 (the adapter starts as the base model). These are exactly the
  // means FactorGaussian::initial_prior draws from the same generator, so ABMLL and the baselines start alike.
  // float32 leaf tensors on `device` that require grad.
  // The sites are lora_sites(config, lora).
  static PointLora initial(const model::ModelConfig& config, const model::LoraSettings& lora, at::Device device,
                           at::Generator generator);

  // G copies of this (ungrouped) adapter. With `track` they stay differentiable functions of it; otherwise they
  // are new leaf tensors that require grad.
  PointLora copies(int64_t groups, bool track) const;

  bool grouped() const { return grouped_; }
  const std::map<model::LinearSite, model::LoraFactors>& sites() const { return sites_; }
  // a, b per site, in site order.
  std::vector<at::Tensor> tensors() const;
  PointLora with_tensors(const std::vector<at::Tensor>& tensors) const;

  // As LoRA factors with `groups` groups: a grouped adapter's own groups (groups must match, or its one group is
  // repeated), or an ungrouped adapter repeated (differentiably) for every group.
  std::map<model::LinearSite, model::LoraFactors> factors(int64_t groups) const;
  // The same as an adapter for the decoder (what an NllFunction runs).
  std::unique_ptr<model::BatchedLora> adapter(int64_t groups) const;

  // "model.layers.0.self_attn.q_proj.lora_A", "...lora_B": one name per tensor, in tensors() order.
  std::vector<std::string> names() const;

 private:
  std::map<model::LinearSite, model::LoraFactors> sites_;
  model::LoraSettings lora_;
  bool grouped_ = false;
};

}  // namespace abmll::meta
