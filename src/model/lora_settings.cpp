#include "model/lora_settings.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <iterator>

#include "util/error.h"

namespace abmll::model {

double LoraSettings::scale() const {
  const double r = static_cast<double>(rank);
  return rslora ? alpha / std::sqrt(r) : alpha / r;
}

void LoraSettings::validate() const {
  if (rank <= 0) throw InputError(fmt::format("LoRA rank must be positive, got {}", rank));
  if (!(dropout >= 0 && dropout < 1)) throw InputError(fmt::format("LoRA dropout must be in [0, 1), got {}", dropout));
  if (targets.empty()) throw InputError("LoRA has no target modules");
}

std::set<Projection> parse_lora_targets(const std::vector<std::string>& names, const std::string& source) {
  std::set<Projection> out;
  for (const auto& name : names) {
    if (name == "all-linear") {
      out.insert(std::begin(kSeparateProjections), std::end(kSeparateProjections));
      continue;
    }
    const std::vector<Projection> named = projections_named(name);
    if (named.empty())
      throw InputError(fmt::format("{}: '{}' is not a LoRA target module of these decoders (q_proj, k_proj, v_proj, "
                                   "o_proj, gate_proj, up_proj, down_proj, Phi-3's qkv_proj and gate_up_proj, or "
                                   "all-linear)",
                                   source, name));
    out.insert(named.begin(), named.end());
  }
  return out;
}

std::set<Projection> fit_lora_targets(const std::vector<std::string>& names, const ModelConfig& config,
                                      const std::string& source) {
  const std::vector<Projection> available = model_projections(config);
  std::vector<std::string> available_names;
  for (Projection p : available) available_names.push_back(projection_name(p));
  std::set<Projection> out;
  for (const auto& name : names) {
    if (name == "all-linear") {
      out.insert(available.begin(), available.end());
      continue;
    }
    // (A name several architectures share, such as "out_proj", stands for the module this model has.)
    const std::set<Projection> named = parse_lora_targets({name}, source);
    const auto found = std::find_if(named.begin(), named.end(), [&](Projection p) {
      return std::find(available.begin(), available.end(), p) != available.end();
    });
    if (found == named.end()) {
      const bool ungated = config.activation == Activation::xielu;
      const char* note = config.fused_qkv             ? " (q, k and v are one projection, gate and up another)"
                         : config.fused_gate_up       ? " (gate and up are one projection)"
                         : config.moe.num_experts > 0 ? " (the experts' MLPs are not adapted)"
                         : ungated                    ? " (its MLP has no gate)"
                                                      : "";
      throw InputError(fmt::format("{}: '{}' is not a module of this {} model; its layers' linear modules are {}{}",
                                   source, name, to_string(config.architecture), fmt::join(available_names, ", "),
                                   note));
    }
    out.insert(*found);
  }
  return out;
}

std::vector<std::string> lora_target_names(const std::set<Projection>& targets) {
  std::vector<std::string> out;
  for (Projection p : targets) out.push_back(projection_name(p));
  return out;
}

}  // namespace abmll::model
