// PEFT LoRA folders (see peft_adapter.h).
#include "model/peft_adapter.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <set>
#include <string_view>
#include <vector>

#include "io/safetensors_writer.h"
#include "io/tensor_store.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::model {
namespace {

constexpr std::string_view kConfigFile = "adapter_config.json";
constexpr std::string_view kWeightsFile = "adapter_model.safetensors";

// PEFT names a tensor base_model.model.<module path>.lora_A.weight. The module paths of the decoder's layers are
// projection_path()'s ("model.layers.3.self_attn.q_proj") in a text-only model; in a multimodal Gemma-3 or Mistral-3
// they are "model.language_model.layers.3..." (transformers 5) or "language_model.model.layers.3..." (4.x).
// `model_prefix` stands for projection_path()'s leading "model.".
constexpr std::string_view kTextPrefix = "base_model.model.model.";
constexpr std::string_view kMultimodalPrefixes[] = {"base_model.model.model.language_model.",
                                                    "base_model.model.language_model.model."};

std::string tensor_name(std::string_view model_prefix, const LinearSite& site, char factor) {
  return fmt::format("{}{}.lora_{}.weight", model_prefix, projection_path(site.layer, site.projection).substr(6),
                     factor);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Whether `config`'s adapters may come from a multimodal model: a multimodal checkpoint's, or a Gemma-3's, a
// Ministral-3's and a Qwen3.5's, whose language model is the same extracted or not.
bool may_be_multimodal(const ModelConfig& config) {
  return config.multimodal || config.architecture == Architecture::gemma3 ||
         config.architecture == Architecture::ministral3 || config.architecture == Architecture::qwen3_5 ||
         config.architecture == Architecture::qwen3_5_moe;
}

// The prefix under which `store` holds the adapter's layers: the text-only one, or either multimodal one.
std::string adapter_prefix(const io::TensorStore& store, const ModelConfig& config, const std::string& file) {
  std::vector<std::string_view> candidates = {kTextPrefix};
  if (may_be_multimodal(config)) {
    candidates.assign(std::begin(kMultimodalPrefixes), std::end(kMultimodalPrefixes));
    candidates.push_back(kTextPrefix);
  }
  const std::vector<std::string> names = store.names();
  for (const std::string_view prefix : candidates) {
    const std::string layers = std::string(prefix) + "layers.";
    for (const std::string& name : names)
      if (starts_with(name, layers)) return std::string(prefix);
  }
  throw InputError(fmt::format("{}: no LoRA tensor of the model's layers ({}layers.N...; an adapter for another "
                               "model?)", file, candidates.front()));
}

// A multimodal model's LoRA tensors outside its language model (the vision tower's, the projector's): they never
// act on text.
bool outside_language_model(const std::string& name) {
  // (Qwen3.5's vision tower is `visual`.)
  return name.find(".vision_tower.") != std::string::npos || name.find(".visual.") != std::string::npos ||
         name.find(".multi_modal_projector.") != std::string::npos;
}

// The projections an adapter whose target_modules is a regular expression or a list of module paths adapts, from
// its tensors' names (<prefix>layers.N.<self_attn|mlp>.<proj>.lora_A.weight): the same in every layer, as abmll
// adapts them. A projection the model lacks is never found (its tensors would be unexpected ones).
std::set<Projection> targets_from_tensors(const io::TensorStore& store, const std::string& prefix,
                                          const ModelConfig& config, const std::string& file) {
  std::vector<std::set<Projection>> per_layer(static_cast<std::size_t>(config.num_layers));
  for (int64_t layer = 0; layer < config.num_layers; ++layer)
    for (Projection p : kAllProjections)
      if (store.has(tensor_name(prefix, {layer, p}, 'A'))) per_layer[static_cast<std::size_t>(layer)].insert(p);
  // Each layer is compared with the first of its kind (a Qwen3.5's attention and DeltaNet layers have different
  // modules; every other model's layers are of one kind, layer 0's).
  auto first_like = [&](int64_t layer) {
    int64_t like = 0;
    while (config.is_linear_attention(like) != config.is_linear_attention(layer)) ++like;
    return like;
  };
  std::set<Projection> all;
  for (int64_t layer = 0; layer < config.num_layers; ++layer) {
    const int64_t like = first_like(layer);
    const auto& found = per_layer[static_cast<std::size_t>(layer)];
    const auto& reference = per_layer[static_cast<std::size_t>(like)];
    if (found != reference)
      throw InputError(fmt::format("{}: the adapter adapts [{}] in layer {} but [{}] in layer {}; abmll adapts the "
                                   "same modules in every layer",
                                   file, fmt::join(lora_target_names(reference), ", "), like,
                                   fmt::join(lora_target_names(found), ", "), layer));
    all.insert(found.begin(), found.end());
  }
  if (all.empty())
    throw InputError(fmt::format("{}: no LoRA tensor in layer 0 ({}); abmll adapts the same modules in every layer",
                                 file, tensor_name(prefix, {0, model_projections(config).front()}, 'A')));
  // A module both kinds have (the MLP's) adapted in one kind only.
  for (int64_t layer = 0; layer < config.num_layers; ++layer)
    for (Projection p : all)
      if (layer_has_projection(config, layer, p) && per_layer[static_cast<std::size_t>(layer)].count(p) == 0)
        throw InputError(fmt::format("{}: the adapter adapts {} in some layers but not in layer {}; abmll adapts the "
                                     "same modules in every layer",
                                     file, projection_name(p), layer));
  return all;
}

}  // namespace

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
  PeftAdapterConfig adapter_config = parse_peft_adapter_config(text, config_path.string());

  const io::TensorStore store = io::TensorStore::open(weights_path);
  const std::string file = weights_path.string();
  const std::string prefix = adapter_prefix(store, config, file);
  adapter_config.settings.targets =
      adapter_config.targets_from_tensors
          ? targets_from_tensors(store, prefix, config, file)
          : fit_lora_targets(adapter_config.target_names, config,
                             fmt::format("{}: field 'target_modules'", config_path.string()));
  BatchedLora lora(adapter_config.settings, 1);
  std::set<std::string> expected;
  for (const LinearSite& site : lora_sites(config, lora.settings())) {
    const auto shape = projection_shape(config, site.projection);  // [out, in]
    const int64_t r = lora.settings().rank;
    LoraFactors f;
    for (char factor : {'A', 'B'}) {
      const std::string name = tensor_name(prefix, site, factor);
      expected.insert(name);
      if (!store.has(name))
        throw InputError(fmt::format("{}: no tensor '{}', which target_modules implies (an adapter for another "
                                     "model?)", file, name));
      at::Tensor t = store.tensor(name);
      const std::vector<int64_t> want = factor == 'A' ? std::vector<int64_t>{r, shape[1]}
                                                      : std::vector<int64_t>{shape[0], r};
      if (t.sizes().vec() != want)
        throw InputError(fmt::format("{}: tensor '{}' is [{}], expected [{}] (r={}; an adapter for another "
                                     "model?)", file, name, fmt::join(t.sizes(), ", "),
                                     fmt::join(want, ", "), r));
      if (!at::isFloatingType(t.scalar_type()))
        throw InputError(fmt::format("{}: tensor '{}' has dtype {}", file, name, c10::toString(t.scalar_type())));
      t = t.to(device, at::kFloat, /*non_blocking=*/false, /*copy=*/true).unsqueeze(0);  // [1, ...]
      (factor == 'A' ? f.a : f.b) = t;
    }
    lora.set_factors(site, std::move(f));
  }
  int64_t vision_tensors = 0;
  for (const auto& name : store.names()) {
    if (expected.count(name) != 0) continue;
    if (may_be_multimodal(config) && outside_language_model(name)) {
      ++vision_tensors;
      continue;
    }
    throw InputError(fmt::format("{}: unexpected tensor '{}' (only lora_A / lora_B of the target_modules of "
                                 "layers 0..{} are supported)", file, name, config.num_layers - 1));
  }
  if (vision_tensors > 0)
    log::info("{}: {} LoRA tensors of the vision tower or projector left out (they do not act on text)", file,
              vision_tensors);
  return lora;
}

void write_peft_adapter(const std::filesystem::path& dir, const BatchedLora& lora, const ModelConfig& config,
                        int64_t group, const std::string& base_model) {
  const LoraSettings& s = lora.settings();
  if (group < 0 || group >= lora.groups())
    throw Error(fmt::format("write_peft_adapter: group {} of {}", group, lora.groups()));
  // transformers 5's module paths: PeftModel.from_pretrained on the multimodal model finds them.
  const std::string_view prefix = config.multimodal ? kMultimodalPrefixes[0] : kTextPrefix;
  io::NamedTensors tensors;
  for (const LinearSite& site : lora_sites(config, s)) {
    const LoraFactors* f = lora.factors(site);
    if (f == nullptr)
      throw Error(fmt::format("write_peft_adapter: no factors for {}", projection_path(site.layer, site.projection)));
    tensors.emplace_back(tensor_name(prefix, site, 'A'), f->a[group].detach().to(at::kCPU, at::kFloat).contiguous());
    tensors.emplace_back(tensor_name(prefix, site, 'B'), f->b[group].detach().to(at::kCPU, at::kFloat).contiguous());
  }
  std::filesystem::create_directories(dir);
  io::write_safetensors(dir / kWeightsFile, tensors, {{"format", "pt"}});
  write_file_atomic(dir / kConfigFile, peft_adapter_config_json(s, base_model, config.multimodal).dump(2) + "\n");
}

}  // namespace abmll::model
