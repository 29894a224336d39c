// PEFT's adapter_config.json, read into LoraSettings and written from them (torch-free: fuzzed in fuzz/). Only
// plain LoRA is accepted: options that change what the adapter computes in ways abmll does not implement are refused
// (see peft_adapter.h).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "model/lora_settings.h"

namespace abmll::model {

// The adapter's settings from DIR/adapter_config.json's JSON text. `source` names the file in errors. Throws
// abmll::InputError naming the source and the field for a missing or mistyped field, a target that is not one of
// the seven projections, or an unsupported option.
LoraSettings parse_peft_adapter_config(const std::string& json_text, const std::string& source);

// adapter_config.json for `settings` as PEFT writes a plain LoRA's (an integral alpha as an integer), naming
// `base_model` (may be empty: null) as base_model_name_or_path; parse_peft_adapter_config reads it back unchanged.
nlohmann::json peft_adapter_config_json(const LoraSettings& settings, const std::string& base_model = "");

}  // namespace abmll::model
