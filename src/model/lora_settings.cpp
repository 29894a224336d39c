#include "model/lora_settings.h"

#include <fmt/format.h>

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
      out.insert(std::begin(kAllProjections), std::end(kAllProjections));
      continue;
    }
    const auto p = parse_projection(name);
    if (!p)
      throw InputError(fmt::format("{}: '{}' is not a LoRA target module of these decoders (q_proj, k_proj, v_proj, "
                                   "o_proj, gate_proj, up_proj, down_proj or all-linear)",
                                   source, name));
    out.insert(*p);
  }
  return out;
}

std::vector<std::string> lora_target_names(const std::set<Projection>& targets) {
  std::vector<std::string> out;
  for (Projection p : targets) out.push_back(projection_name(p));
  return out;
}

}  // namespace abmll::model
