// PEFT's adapter_config.json, read into LoraSettings and written from them (torch-free: fuzzed in fuzz/). Only
// plain LoRA is accepted: options that change what the adapter computes in ways abmll does not implement are refused
// (see peft_adapter.h).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "model/lora_settings.h"

namespace abmll::model {

// What adapter_config.json says. `settings.targets` are target_modules' projections. When target_modules is a
// regular expression (which PEFT matches against whole module paths, e.g. to adapt a multimodal model's language
// model and not its vision tower), or lists module paths (which PEFT matches as suffixes), or exclude_modules leaves
// some out, `settings.targets` is empty and `targets_from_tensors` set: the adapter's tensors say which modules it
// adapts (see load_peft_adapter).
struct PeftAdapterConfig {
  LoraSettings settings;
  bool targets_from_tensors = false;
  std::string target_pattern;             // target_modules when it is a regular expression
  std::vector<std::string> target_names;  // target_modules' names as given (or "all-linear"), for fit_lora_targets
};

// The adapter's config from DIR/adapter_config.json's JSON text. `source` names the file in errors. Throws
// abmll::InputError naming the source and the field for a missing or mistyped field, a target that is not one of
// the seven projections, or an unsupported option.
PeftAdapterConfig parse_peft_adapter_config(const std::string& json_text, const std::string& source);

// adapter_config.json for `settings` as PEFT writes a plain LoRA's (an integral alpha as an integer), naming
// `base_model` (may be empty: null) as base_model_name_or_path. target_modules lists the targets' names, or for a
// multimodal model's language model (`multimodal`) is the regular expression language_model_targets() gives.
// parse_peft_adapter_config reads the settings back unchanged (with that pattern and no targets when multimodal).
nlohmann::json peft_adapter_config_json(const LoraSettings& settings, const std::string& base_model = "",
                                        bool multimodal = false);

// ".*language_model.*\.(q_proj|v_proj)": the targets' modules inside a multimodal model's language model only (PEFT
// fullmatches it against module paths such as model.language_model.layers.3.self_attn.q_proj, and not against the
// vision tower's model.vision_tower.encoder.layers.0.self_attn.q_proj).
std::string language_model_targets(const std::set<Projection>& targets);

}  // namespace abmll::model
