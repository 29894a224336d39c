// PEFT LoRA folders (see peft_adapter.h).
#include "model/peft_adapter.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <iterator>
#include <set>
#include <string_view>
#include <vector>

#include "io/safetensors_writer.h"
#include "io/tensor_store.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace abmll::model {
namespace {

constexpr std::string_view kConfigFile = "adapter_config.json";
constexpr std::string_view kWeightsFile = "adapter_model.safetensors";
constexpr std::string_view kPrefix = "base_model.model.";

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
const std::set<std::string, std::less<>> kRead = {"peft_type", "r", "lora_alpha", "use_rslora", "lora_dropout",
                                                  "target_modules", "bias", "init_lora_weights"};

std::string tensor_name(const LinearSite& site, char factor) {
  return fmt::format("{}{}.lora_{}.weight", kPrefix, projection_path(site.layer, site.projection), factor);
}

}  // namespace

LoraSettings parse_peft_adapter_config(const std::string& json_text, const std::string& source) {
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
  if (targets != nullptr && targets->is_string()) {
    if (targets->get<std::string>() != "all-linear")
      throw field_error("target_modules",
                        fmt::format("is the regular expression {}; give a list of module names", targets->dump()));
    names.push_back("all-linear");
  } else if (targets != nullptr && targets->is_array()) {
    for (const auto& t : *targets) {
      if (!t.is_string()) throw field_error("target_modules", "must hold module names (strings)");
      names.push_back(t.get<std::string>());
    }
  } else {
    throw field_error("target_modules", "must be a list of module names or \"all-linear\"");
  }
  s.targets = with_context(fmt::format("{}: field 'target_modules'", source),
                           [&] { return parse_lora_targets(names, "target_modules"); });
  if (s.targets.empty()) throw field_error("target_modules", "is empty");

  // Everything else must be off (DoRA, rank/alpha patterns, modules_to_save, layers_to_transform, LoRA biases,
  // trainable tokens, other variants, and any option a newer PEFT adds).
  for (const auto& [key, value] : j.items()) {
    if (kRead.count(key) != 0 || kIgnored.count(key) != 0 || is_off(value)) continue;
    throw field_error(key, fmt::format("is {}; abmll supports plain LoRA only (this option must be unset, false or "
                                       "empty)", value.dump()));
  }
  return s;
}

BatchedLora load_peft_adapter(const std::filesystem::path& dir, const ModelConfig& config, at::Device device) {
  const std::filesystem::path config_path = dir / kConfigFile, weights_path = dir / kWeightsFile;
  if (!std::filesystem::is_regular_file(config_path))
    throw InputError(fmt::format("{}: no {} (is this a PEFT adapter folder?)", dir.string(), kConfigFile));
  if (!std::filesystem::is_regular_file(weights_path))
    throw InputError(fmt::format("{}: no {} (only safetensors adapters are read)", dir.string(), kWeightsFile));
  std::string text;
  {
    std::ifstream in(config_path, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), {});
    if (!in.good() && !in.eof()) throw InputError(fmt::format("cannot read {}", config_path.string()));
  }
  BatchedLora lora(parse_peft_adapter_config(text, config_path.string()), 1);

  const io::TensorStore store = io::TensorStore::open(weights_path);
  std::set<std::string> expected;
  for (const LinearSite& site : lora_sites(config, lora.settings())) {
    const auto shape = projection_shape(config, site.projection);  // [out, in]
    const int64_t r = lora.settings().rank;
    LoraFactors f;
    for (char factor : {'A', 'B'}) {
      const std::string name = tensor_name(site, factor);
      expected.insert(name);
      if (!store.has(name))
        throw InputError(fmt::format("{}: no tensor '{}', which target_modules implies (an adapter for another "
                                     "model?)", weights_path.string(), name));
      at::Tensor t = store.tensor(name);
      const std::vector<int64_t> want = factor == 'A' ? std::vector<int64_t>{r, shape[1]}
                                                      : std::vector<int64_t>{shape[0], r};
      if (t.sizes().vec() != want)
        throw InputError(fmt::format("{}: tensor '{}' is [{}], expected [{}] (r={}; an adapter for another "
                                     "model?)", weights_path.string(), name, fmt::join(t.sizes(), ", "),
                                     fmt::join(want, ", "), r));
      if (!at::isFloatingType(t.scalar_type()))
        throw InputError(fmt::format("{}: tensor '{}' has dtype {}", weights_path.string(), name,
                                     c10::toString(t.scalar_type())));
      t = t.to(device, at::kFloat, /*non_blocking=*/false, /*copy=*/true).unsqueeze(0);  // [1, ...]
      (factor == 'A' ? f.a : f.b) = t;
    }
    lora.set_factors(site, std::move(f));
  }
  for (const auto& name : store.names())
    if (expected.count(name) == 0)
      throw InputError(fmt::format("{}: unexpected tensor '{}' (only lora_A / lora_B of the target_modules of "
                                   "layers 0..{} are supported)", weights_path.string(), name,
                                   config.num_layers - 1));
  return lora;
}

void write_peft_adapter(const std::filesystem::path& dir, const BatchedLora& lora, const ModelConfig& config,
                        int64_t group, const std::string& base_model) {
  const LoraSettings& s = lora.settings();
  if (group < 0 || group >= lora.groups())
    throw Error(fmt::format("write_peft_adapter: group {} of {}", group, lora.groups()));
  io::NamedTensors tensors;
  for (const LinearSite& site : lora_sites(config, s)) {
    const LoraFactors* f = lora.factors(site);
    if (f == nullptr)
      throw Error(fmt::format("write_peft_adapter: no factors for {}", projection_path(site.layer, site.projection)));
    tensors.emplace_back(tensor_name(site, 'A'), f->a[group].detach().to(at::kCPU, at::kFloat).contiguous());
    tensors.emplace_back(tensor_name(site, 'B'), f->b[group].detach().to(at::kCPU, at::kFloat).contiguous());
  }
  // An integral alpha is written as an integer, as PEFT does.
  const nlohmann::json alpha = s.alpha == std::floor(s.alpha) && std::abs(s.alpha) < 1e15
                                   ? nlohmann::json(static_cast<int64_t>(s.alpha))
                                   : nlohmann::json(s.alpha);
  const nlohmann::json j = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model.empty() ? nlohmann::json(nullptr) : nlohmann::json(base_model)},
      {"r", s.rank},
      {"lora_alpha", alpha},
      {"use_rslora", s.rslora},
      {"lora_dropout", s.dropout},
      {"target_modules", lora_target_names(s.targets)},
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
  std::filesystem::create_directories(dir);
  io::write_safetensors(dir / kWeightsFile, tensors, {{"format", "pt"}});
  write_file_atomic(dir / kConfigFile, j.dump(2) + "\n");
}

}  // namespace abmll::model
