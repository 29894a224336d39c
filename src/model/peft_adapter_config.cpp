// PEFT's adapter_config.json (see peft_adapter_config.h).
#include "model/peft_adapter_config.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace abmll::model {
namespace {

// "Off" in any spelling PEFT versions use for an unused option: null, false, "", [], {}.
bool is_off(const nlohmann::json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_string() && v.get<std::string>().empty()) ||
         ((v.is_array() || v.is_object()) && v.empty());
}

// Fields that only describe the adapter or its initialisation, never what it computes once trained.
const std::set<std::string, std::less<>> kIgnored = {
    "task_type",   "auto_mapping",  "base_model_name_or_path", "revision",     "inference_mode",
    "peft_version", "loftq_config", "eva_config",              "corda_config", "lora_ga_config",
    "megatron_core", "qalora_group_size", "ensure_weight_tying"};
// Fields this reader interprets itself.
const std::set<std::string, std::less<>> kRead = {"peft_type",      "r",    "lora_alpha",       "use_rslora",
                                                  "lora_dropout",   "bias", "init_lora_weights", "target_modules",
                                                  "exclude_modules"};

}  // namespace

PeftAdapterConfig parse_peft_adapter_config(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a JSON object", source));
  auto field_error = [&](std::string_view field, std::string_view why) {
    return InputError(fmt::format("{}: field '{}' {}", source, field, why));
  };
  auto get = [&](std::string_view field) -> const nlohmann::json* {
    auto it = j.find(field);
    return it == j.end() ? nullptr : &*it;
  };

  const auto* peft_type = get("peft_type");
  if (peft_type == nullptr || !peft_type->is_string() || peft_type->get<std::string>() != "LORA")
    throw field_error("peft_type", fmt::format("is {}; only LORA adapters are supported",
                                               peft_type ? peft_type->dump() : "missing"));
  LoraSettings s;
  const auto* r = get("r");
  if (r == nullptr || !r->is_number_integer() || r->get<int64_t>() <= 0)
    throw field_error("r", fmt::format("must be a positive integer, got {}", r ? r->dump() : "nothing"));
  s.rank = r->get<int64_t>();
  const auto* alpha = get("lora_alpha");
  if (alpha == nullptr || !alpha->is_number())
    throw field_error("lora_alpha", fmt::format("must be a number, got {}", alpha ? alpha->dump() : "nothing"));
  s.alpha = alpha->get<double>();
  if (const auto* v = get("use_rslora"); v != nullptr && !v->is_null()) {
    if (!v->is_boolean()) throw field_error("use_rslora", "must be true or false");
    s.rslora = v->get<bool>();
  }
  if (const auto* v = get("lora_dropout"); v != nullptr && !v->is_null()) {
    if (!v->is_number() || v->get<double>() < 0 || v->get<double>() >= 1)
      throw field_error("lora_dropout", fmt::format("must be a number in [0, 1), got {}", v->dump()));
    s.dropout = v->get<double>();
  }
  if (const auto* v = get("bias"); v != nullptr && !(v->is_string() && v->get<std::string>() == "none"))
    throw field_error("bias", fmt::format("is {}; only \"none\" is supported", v->dump()));
  if (const auto* v = get("init_lora_weights"); v != nullptr && !v->is_boolean() && !v->is_null()) {
    // PiSSA, OLoRA, LoftQ, CorDA, EVA ... initialisations modify the base weights: such an adapter is relative to
    // a base model that is not the checkpoint (unless converted when saved, which writes `true` here).
    const std::string init = v->is_string() ? v->get<std::string>() : v->dump();
    if (init != "gaussian" && init != "orthogonal")
      throw field_error("init_lora_weights",
                        fmt::format("is \"{}\": this initialisation changes the base weights; save the adapter "
                                    "converted to plain LoRA (path_initial_model_for_weight_conversion)", init));
  }

  const auto* targets = get("target_modules");
  std::vector<std::string> names;
  std::string pattern;
  if (targets != nullptr && targets->is_string() && targets->get<std::string>() == "all-linear") {
    names.push_back("all-linear");
  } else if (targets != nullptr && targets->is_string()) {
    pattern = targets->get<std::string>();
    if (pattern.empty()) throw field_error("target_modules", "is an empty regular expression");
  } else if (targets != nullptr && targets->is_array()) {
    for (const auto& t : *targets) {
      if (!t.is_string()) throw field_error("target_modules", "must hold module names (strings)");
      names.push_back(t.get<std::string>());
    }
  } else {
    throw field_error("target_modules", "must be a list of module names or \"all-linear\"");
  }
  // Module paths ("model.layers.0.mlp.up_proj", as PEFT writes "all-linear" resolved for a model with few modules,
  // or "self_attn.q_proj"), which PEFT matches as suffixes: which modules they leave adapted is read from the
  // tensors, as for a pattern.
  bool paths = std::any_of(names.begin(), names.end(),
                           [](const std::string& name) { return name.find('.') != std::string::npos; });
  // exclude_modules (a pattern or names, e.g. a multimodal model's vision tower) leaves out some of what
  // target_modules matches: the tensors say what is left.
  if (const auto* v = get("exclude_modules"); v != nullptr && !is_off(*v)) {
    const bool names_only = v->is_array() && std::all_of(v->begin(), v->end(), [](const nlohmann::json& e) {
      return e.is_string();
    });
    if (!v->is_string() && !names_only)
      throw field_error("exclude_modules", fmt::format("must be a regular expression or a list of module names, "
                                                       "not {}", v->dump()));
    paths = true;
  }
  if (pattern.empty() && !paths) {
    s.targets = with_context(fmt::format("{}: field 'target_modules'", source),
                             [&] { return parse_lora_targets(names, "target_modules"); });
    if (s.targets.empty()) throw field_error("target_modules", "is empty");
  }

  // What PEFT's "all-linear" adds on a mixture of experts (with rank and alpha patterns for it): named first.
  if (const auto* v = get("target_parameters"); v != nullptr && !is_off(*v))
    throw field_error("target_parameters",
                      fmt::format("is {}: LoRA on a mixture of experts' expert or router weights is not supported; "
                                  "abmll adapts the attention projections of such models (list them in "
                                  "target_modules)",
                                  v->dump()));
  // Everything else must be off (DoRA, rank/alpha patterns, modules_to_save, layers_to_transform, LoRA biases,
  // trainable tokens, other variants, and any option a newer PEFT adds).
  for (const auto& [key, value] : j.items()) {
    if (kRead.count(key) != 0 || kIgnored.count(key) != 0 || is_off(value)) continue;
    throw field_error(key, fmt::format("is {}; abmll supports plain LoRA only (this option must be unset, false or "
                                       "empty)", value.dump()));
  }
  return {s, !pattern.empty() || paths, pattern, names};
}

std::string language_model_targets(const std::set<Projection>& targets) {
  std::string alternatives;
  for (const std::string& name : lora_target_names(targets)) alternatives += (alternatives.empty() ? "" : "|") + name;
  return fmt::format(R"(.*language_model.*\.({}))", alternatives);
}

nlohmann::json peft_adapter_config_json(const LoraSettings& s, const std::string& base_model, bool multimodal) {
  // An integral alpha is written as an integer, as PEFT does.
  const nlohmann::json alpha = s.alpha == std::floor(s.alpha) && std::abs(s.alpha) < 1e15
                                   ? nlohmann::json(static_cast<int64_t>(s.alpha))
                                   : nlohmann::json(s.alpha);
  return {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model.empty() ? nlohmann::json(nullptr) : nlohmann::json(base_model)},
      {"r", s.rank},
      {"lora_alpha", alpha},
      {"use_rslora", s.rslora},
      {"lora_dropout", s.dropout},
      {"target_modules", multimodal ? nlohmann::json(language_model_targets(s.targets))
                                    : nlohmann::json(lora_target_names(s.targets))},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"use_dora", false},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
      {"init_lora_weights", true},
      {"inference_mode", true},
  };
}

}  // namespace abmll::model
