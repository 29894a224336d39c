// LoRA through the adapter seam (linear.h), batched over adapter groups: one forward can carry a different adapter
// for each sequence of the batch (e.g. every task of a meta-batch with its own sampled factors). At an adapted site
// with frozen W [out, in], a sequence of group g gets
//   y = x W^T + b + s * (dropout(x) A_g^T) B_g^T,   s = alpha / r  (or alpha / sqrt(r) with rsLoRA),
// which is PEFT's LoRA (lora_B(lora_A(dropout(x))) * scaling) with A_g = lora_A.weight, B_g = lora_B.weight.
//
// Dimension letters: G adapter groups, B sequences, T time, r rank, in / out the projection's sizes.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/linear.h"
#include "model/lora_settings.h"
#include "model/model_config.h"
#include "model/weight_names.h"

namespace abmll::model {

// One site's factors for G groups (any floating dtype, usually float32; may require grad, may be non-leaf).
struct LoraFactors {
  at::Tensor a;  // [G, r, in]
  at::Tensor b;  // [G, out, r]
};

// The sites `settings` adapts under `config`, in order (layer, then projection).
std::vector<LinearSite> lora_sites(const ModelConfig& config, const LoraSettings& settings);

class BatchedLora : public LinearAdapter {
 public:
  // G >= 1 groups; no factors yet (a site without factors is not adapted).
  BatchedLora(LoraSettings settings, int64_t groups);

  // Factors for every site of lora_sites(): A ~ N(0, init_std^2) and B = 0 (PEFT's convention that a new adapter
  // leaves the model unchanged) in `dtype` on `device`, not requiring grad.
  static BatchedLora zeros_b(const ModelConfig& config, LoraSettings settings, int64_t groups, double init_std,
                             at::ScalarType dtype, at::Device device);

  const LoraSettings& settings() const { return settings_; }
  int64_t groups() const override { return groups_; }

  // Sets a site's factors. Throws abmll::Error if the site is not a target, or if shapes or dtypes disagree with
  // [G, r, in] / [G, out, r] (in / out are checked against the projection's input at delta()).
  void set_factors(const LinearSite& site, LoraFactors factors);
  // The site's factors, or nullptr.
  const LoraFactors* factors(const LinearSite& site) const;
  const std::map<LinearSite, LoraFactors>& all_factors() const { return factors_; }

  // [B] int64 in [0, G). Undefined (the default) means every sequence uses group 0; with G > 1 it must be set.
  void set_group_of_sequence(const at::Tensor& group_of_sequence) override;
  const at::Tensor& group_of_sequence() const { return group_of_sequence_; }

  // Dropout on (training) or off (evaluation, the default). Each site draws its mask from a generator seeded with
  // a hash of (seed, layer, projection): a forward is reproducible given the seed, and recomputing a layer (gradient
  // checkpointing) draws the same masks. Callers pass a fresh seed per step (from their RNG stream).
  void set_training(bool training, uint64_t seed = 0);
  bool training() const { return training_; }

  // x [B, T, in] -> [B, T, out] in x's dtype (computed in the factors' dtype), or undefined at a site without
  // factors.
  at::Tensor delta(const at::Tensor& x, const LinearSite& site) const override;
  // Every factor tensor that requires grad.
  std::vector<at::Tensor> trainable_tensors() const override;

 private:
  at::Tensor dropout(const at::Tensor& x, const LinearSite& site) const;

  LoraSettings settings_;
  int64_t groups_ = 1;
  std::map<LinearSite, LoraFactors> factors_;
  at::Tensor group_of_sequence_;  // [B] int64, or undefined
  int64_t block_ = 0;             // group_block_size(group_of_sequence_), 0 when undefined
  bool training_ = false;
  uint64_t seed_ = 0;
};

}  // namespace abmll::model
