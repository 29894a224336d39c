// What a LoRA adapter is, apart from its factors: rank, scaling, dropout and the projections it adapts (lora.h
// applies it; PEFT's adapter_config.json and the `lora` config keys describe it). Torch-free, so that the parsers
// of those files build without LibTorch (fuzz/).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "model/weight_names.h"

namespace abmll::model {

// What every adapted site shares.
struct LoraSettings {
  int64_t rank = 8;                   // r
  double alpha = 16;
  bool rslora = false;                // s = alpha / sqrt(r) instead of alpha / r
  double dropout = 0;                 // on the adapter's input, training mode only; in [0, 1)
  std::set<Projection> targets;       // adapted projections, in every layer

  // s.
  double scale() const;
  // Throws abmll::InputError for a non-positive rank, a dropout outside [0, 1) or no targets.
  void validate() const;
};

// PEFT / HF module names ("q_proj", ..., or "q", ...) -> projections; a name two architectures give different
// modules ("out_proj": a Gated DeltaNet's and a Mamba-2 layer's) -> both. "all-linear" means the seven of an unfused
// layer. Throws abmll::InputError naming `source` and the unknown name.
std::set<Projection> parse_lora_targets(const std::vector<std::string>& names, const std::string& source);
// The same for a model of `config`: "all-linear" means every projection its layers have (model_projections), and a
// projection they do not have (q_proj of Phi-3's fused layers, qkv_proj of another model's) is refused, naming
// `source`, the name and the modules there are.
std::set<Projection> fit_lora_targets(const std::vector<std::string>& names, const ModelConfig& config,
                                      const std::string& source);
std::vector<std::string> lora_target_names(const std::set<Projection>& targets);

}  // namespace abmll::model
