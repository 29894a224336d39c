// Parsing config.json (see model_config.h). Defaults follow transformers' config classes (LlamaConfig, Qwen2Config,
// ..., OlmoeConfig) for the fields real checkpoints sometimes leave out; the sizes themselves are required, except in
// a multimodal Gemma-3's text_config (whose releases leave most of them out).
#include "model/model_config.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string_view>
#include <tuple>

#include "util/error.h"

namespace abmll::model {
namespace fs = std::filesystem;
namespace {

// Reads fields of one JSON object, throwing InputError "<source>: field 'x' ..." for a wrong type.
class Fields {
 public:
  Fields(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw InputError(fmt::format("{}: field '{}' {}", source_, field, problem));
  }
  std::string value_text(const std::string& field) const { return j_.at(field).dump(); }

  // Present and not null.
  bool has(const std::string& field) const { return j_.contains(field) && !j_.at(field).is_null(); }

  int64_t integer(const std::string& field, std::optional<int64_t> fallback = std::nullopt) const {
    if (!has(field)) {
      if (fallback) return *fallback;
      fail(field, "is missing");
    }
    const auto& v = j_.at(field);
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail(field, fmt::format("is out of range ({})", v.dump()));
    if (v.is_number_integer()) return v.get<int64_t>();
    // Some tools write 8192.0 for integers; accept exact ones (within int64: casting a larger double is undefined).
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::trunc(d) == d && std::abs(d) < 9.2e18) return static_cast<int64_t>(d);
    }
    fail(field, fmt::format("must be an integer, not {}", v.dump()));
  }

  double number(const std::string& field, std::optional<double> fallback = std::nullopt) const {
    if (!has(field)) {
      if (fallback) return *fallback;
      fail(field, "is missing");
    }
    const auto& v = j_.at(field);
    if (!v.is_number()) fail(field, fmt::format("must be a number, not {}", v.dump()));
    return v.get<double>();
  }

  bool boolean(const std::string& field, bool fallback) const {
    if (!has(field)) return fallback;
    const auto& v = j_.at(field);
    if (!v.is_boolean()) fail(field, fmt::format("must be true or false, not {}", v.dump()));
    return v.get<bool>();
  }

  std::string string(const std::string& field, const std::string& fallback) const {
    if (!has(field)) return fallback;
    const auto& v = j_.at(field);
    if (!v.is_string()) fail(field, fmt::format("must be a string, not {}", v.dump()));
    return v.get<std::string>();
  }

  const nlohmann::json& json() const { return j_; }
  const std::string& source() const { return source_; }

 private:
  const nlohmann::json& j_;
  std::string source_;
};

// Each architecture's model_type and its class in `architectures`.
struct ArchitectureName {
  Architecture architecture;
  const char* model_type;
  const char* class_name;
  bool multimodal;  // the language model of a vision-language checkpoint (its config's text_config)
};
constexpr ArchitectureName kArchitectures[] = {
    {Architecture::llama, "llama", "LlamaForCausalLM", false},
    {Architecture::qwen2, "qwen2", "Qwen2ForCausalLM", false},
    {Architecture::qwen3, "qwen3", "Qwen3ForCausalLM", false},
    {Architecture::mistral, "mistral", "MistralForCausalLM", false},
    {Architecture::ministral, "ministral", "MinistralForCausalLM", false},
    {Architecture::exaone4, "exaone4", "Exaone4ForCausalLM", false},
    {Architecture::seed_oss, "seed_oss", "SeedOssForCausalLM", false},
    {Architecture::glm4_moe, "glm4_moe", "Glm4MoeForCausalLM", false},
    {Architecture::ministral3, "ministral3", "Ministral3ForCausalLM", false},
    {Architecture::ministral3, "mistral3", "Mistral3ForConditionalGeneration", true},  // (or Mistral's: text_config)
    {Architecture::qwen3_5, "qwen3_5_text", "Qwen3_5ForCausalLM", false},
    {Architecture::qwen3_5, "qwen3_5", "Qwen3_5ForConditionalGeneration", true},
    {Architecture::qwen3_5_moe, "qwen3_5_moe_text", "Qwen3_5MoeForCausalLM", false},
    {Architecture::qwen3_5_moe, "qwen3_5_moe", "Qwen3_5MoeForConditionalGeneration", true},
    {Architecture::gemma, "gemma", "GemmaForCausalLM", false},
    {Architecture::gemma2, "gemma2", "Gemma2ForCausalLM", false},
    {Architecture::gemma3, "gemma3_text", "Gemma3ForCausalLM", false},
    {Architecture::gemma3, "gemma3", "Gemma3ForConditionalGeneration", true},
    {Architecture::olmo2, "olmo2", "Olmo2ForCausalLM", false},
    {Architecture::olmo3, "olmo3", "Olmo3ForCausalLM", false},
    {Architecture::phi3, "phi3", "Phi3ForCausalLM", false},
    {Architecture::granite, "granite", "GraniteForCausalLM", false},
    {Architecture::cohere, "cohere", "CohereForCausalLM", false},
    {Architecture::cohere2, "cohere2", "Cohere2ForCausalLM", false},
    {Architecture::glm, "glm", "GlmForCausalLM", false},
    {Architecture::glm4, "glm4", "Glm4ForCausalLM", false},
    {Architecture::smollm3, "smollm3", "SmolLM3ForCausalLM", false},
    {Architecture::mixtral, "mixtral", "MixtralForCausalLM", false},
    {Architecture::qwen2_moe, "qwen2_moe", "Qwen2MoeForCausalLM", false},
    {Architecture::qwen3_moe, "qwen3_moe", "Qwen3MoeForCausalLM", false},
    {Architecture::olmoe, "olmoe", "OlmoeForCausalLM", false},
    {Architecture::granitemoe, "granitemoe", "GraniteMoeForCausalLM", false},
    {Architecture::granitemoehybrid, "granitemoehybrid", "GraniteMoeHybridForCausalLM", false},
    {Architecture::deepseek_v2, "deepseek_v2", "DeepseekV2ForCausalLM", false},
    {Architecture::deepseek_v3, "deepseek_v3", "DeepseekV3ForCausalLM", false},
    {Architecture::glm4_moe_lite, "glm4_moe_lite", "Glm4MoeLiteForCausalLM", false},
    {Architecture::gpt_oss, "gpt_oss", "GptOssForCausalLM", false},
    {Architecture::apertus, "apertus", "ApertusForCausalLM", false},
};

std::string supported_list(const char* ArchitectureName::*field) {
  std::string out;
  for (const auto& a : kArchitectures) out += fmt::format("{}\"{}\"", out.empty() ? "" : ", ", a.*field);
  return out;
}

// The table's entry that model_type and architectures name (they must agree when both are given).
const ArchitectureName& parse_architecture(const Fields& f) {
  const ArchitectureName *from_type = nullptr, *from_list = nullptr;
  if (f.has("model_type")) {
    const std::string type = f.string("model_type", "");
    for (const auto& a : kArchitectures)
      if (type == a.model_type) from_type = &a;
    if (from_type == nullptr)
      f.fail("model_type",
             fmt::format("is \"{}\"; supported: {}", type, supported_list(&ArchitectureName::model_type)));
  }
  if (f.has("architectures")) {
    const auto& list = f.json().at("architectures");
    if (!list.is_array() || list.size() != 1 || !list[0].is_string())
      f.fail("architectures", fmt::format("must list exactly one architecture, not {}", list.dump()));
    const std::string name = list[0].get<std::string>();
    for (const auto& a : kArchitectures)
      if (name == a.class_name) from_list = &a;
    if (from_list == nullptr)
      f.fail("architectures", fmt::format("is [\"{}\"]; supported: {}", name,
                                          supported_list(&ArchitectureName::class_name)));
  }
  if (from_type != nullptr && from_list != nullptr && from_type != from_list)
    f.fail("architectures", fmt::format("is {} but model_type is {}", f.value_text("architectures"),
                                        f.value_text("model_type")));
  if (from_type != nullptr) return *from_type;
  if (from_list != nullptr) return *from_list;
  f.fail("model_type", "is missing (and so is architectures)");
}

// original_max_position_embeddings of the llama3, yarn and longrope types, as standardize_rope_params settles it:
// the top level's when the config has one (Phi3Config always does: `class_default`, 4096), else the dict's, else
// max_position_embeddings.
int64_t original_length(const Fields& f, const Fields& top, int64_t max_position_embeddings, int64_t class_default) {
  const std::string key = "original_max_position_embeddings";
  const bool at_top = top.has(key);
  const int64_t length = at_top              ? top.integer(key)
                         : class_default > 0 ? class_default
                                             : f.integer(key, max_position_embeddings);
  if (length <= 0) (at_top ? top : f).fail(key, fmt::format("must be positive, not {}", length));
  return length;
}

// YaRN's fields (transformers' _compute_yarn_parameters): factor, else max_position_embeddings over
// original_max_position_embeddings (which defaults to max_position_embeddings); attention_factor, else
// get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) when both are given, else get_mscale(factor), with
// get_mscale(s, m) = 0.1 m ln(s) + 1 (1 for s <= 1); beta_fast and beta_slow 32 and 1 when absent or 0; truncate.
RopeConfig parse_yarn(const Fields& f, RopeConfig rope, int64_t max_position_embeddings) {
  rope.factor = f.has("factor") ? f.number("factor")
                                : static_cast<double>(max_position_embeddings) /
                                      static_cast<double>(rope.original_max_position_embeddings);
  if (!(rope.factor >= 1.0) || !std::isfinite(rope.factor))
    f.fail("factor", fmt::format("must be at least 1, not {}", rope.factor));
  auto mscale = [](double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
  if (f.has("attention_factor")) {
    rope.attention_factor = f.number("attention_factor");
  } else {
    const double m = f.number("mscale", 0.0), m_all = f.number("mscale_all_dim", 0.0);
    rope.attention_factor = m != 0.0 && m_all != 0.0 ? mscale(rope.factor, m) / mscale(rope.factor, m_all)
                                                     : mscale(rope.factor, 1.0);
  }
  if (!(rope.attention_factor > 0.0) || !std::isfinite(rope.attention_factor))
    f.fail("attention_factor", fmt::format("must be positive and finite, not {}", rope.attention_factor));
  // Python's `x or default`: 0 reads as absent.
  rope.beta_fast = f.number("beta_fast", 0.0);
  if (rope.beta_fast == 0.0) rope.beta_fast = 32.0;
  rope.beta_slow = f.number("beta_slow", 0.0);
  if (rope.beta_slow == 0.0) rope.beta_slow = 1.0;
  if (!(rope.beta_fast > 0.0) || !(rope.beta_slow > 0.0) || !std::isfinite(rope.beta_fast) ||
      !std::isfinite(rope.beta_slow))
    f.fail("beta_fast", fmt::format("and beta_slow must be positive and finite, not {} and {}", rope.beta_fast,
                                    rope.beta_slow));
  rope.truncate = f.boolean("truncate", true);
  return rope;
}

// LongRoPE's fields (_compute_longrope_parameters): short_factor and long_factor (one per rotated pair, checked by
// the caller), factor (else max_position_embeddings over the original length), attention_factor, else
// sqrt(1 + ln(factor) / ln(original length)) (1 for a factor of at most 1).
RopeConfig parse_longrope(const Fields& f, RopeConfig rope, int64_t max_position_embeddings) {
  for (const char* key : {"short_factor", "long_factor"}) {
    if (!f.has(key) || !f.json().at(key).is_array())
      f.fail(key, "must be a list of numbers (one per rotated pair of dimensions)");
    std::vector<double>& out = std::string(key) == "short_factor" ? rope.short_factor : rope.long_factor;
    for (const auto& v : f.json().at(key)) {
      if (!v.is_number() || !(v.get<double>() > 0.0) || !std::isfinite(v.get<double>()))
        f.fail(key, fmt::format("must hold positive numbers, not {}", v.dump()));
      out.push_back(v.get<double>());
    }
  }
  rope.factor = f.has("factor") ? f.number("factor")
                                : static_cast<double>(max_position_embeddings) /
                                      static_cast<double>(rope.original_max_position_embeddings);
  if (!(rope.factor > 0.0) || !std::isfinite(rope.factor))
    f.fail("factor", fmt::format("must be positive, not {}", rope.factor));
  const double original = static_cast<double>(rope.original_max_position_embeddings);
  rope.attention_factor = f.has("attention_factor") ? f.number("attention_factor")
                          : rope.factor <= 1.0      ? 1.0
                                                    : std::sqrt(1.0 + std::log(rope.factor) / std::log(original));
  if (!(rope.attention_factor > 0.0) || !std::isfinite(rope.attention_factor))
    f.fail("attention_factor", fmt::format("must be positive and finite, not {}", rope.attention_factor));
  return rope;
}

// One RoPE parameter dict, `params` (named `where` in messages): rope_theta from it, else from the top level, else
// `default_theta`; the type from `rope_type`, else `type`, else "default"; llama3's original_max_position_embeddings
// defaults to max_position_embeddings.
RopeConfig parse_rope_params(const nlohmann::json& params, const std::string& where, const Fields& top,
                             double default_theta, int64_t max_position_embeddings, int64_t class_original_length) {
  const Fields f(params, fmt::format("{}: field '{}'", top.source(), where));
  // Per-layer-type RoPE (nested dicts) other than Gemma-3's and OLMo-3's are other models'.
  for (const auto& [key, value] : params.items())
    if (value.is_object()) f.fail(key, "is a nested RoPE dict (per-layer RoPE is not supported)");

  RopeConfig rope;
  rope.partial_rotary_factor = f.number("partial_rotary_factor", 1.0);  // (the caller says whether that is allowed)
  rope.theta = f.has("rope_theta") ? f.number("rope_theta") : top.number("rope_theta", default_theta);
  if (!(rope.theta > 1.0) || !std::isfinite(rope.theta))
    f.fail("rope_theta", fmt::format("must be greater than 1, not {}", rope.theta));
  rope.type = f.has("rope_type") ? f.string("rope_type", "") : f.string("type", "default");
  if (rope.type == "default") return rope;
  const char* const type_field = f.has("rope_type") ? "rope_type" : "type";
  if (rope.type == "linear") {  // every inverse frequency divided by `factor` (Gemma-3's full-attention layers)
    rope.factor = f.number("factor");
    if (!(rope.factor >= 1.0) || !std::isfinite(rope.factor))
      f.fail("factor", fmt::format("must be at least 1, not {}", f.value_text("factor")));
    return rope;
  }
  if (rope.type != "llama3" && rope.type != "yarn" && rope.type != "longrope")
    f.fail(type_field, fmt::format("is \"{}\"; supported: \"default\", \"linear\", \"llama3\", \"yarn\", "
                                   "\"longrope\"",
                                   rope.type));
  rope.original_max_position_embeddings = original_length(f, top, max_position_embeddings, class_original_length);
  if (rope.type == "yarn") return parse_yarn(f, rope, max_position_embeddings);
  if (rope.type == "longrope") return parse_longrope(f, rope, max_position_embeddings);
  rope.factor = f.number("factor");
  rope.low_freq_factor = f.number("low_freq_factor");
  rope.high_freq_factor = f.number("high_freq_factor");
  if (!(rope.factor >= 1.0)) f.fail("factor", fmt::format("must be at least 1, not {}", rope.factor));
  if (!(rope.low_freq_factor > 0.0) || !(rope.high_freq_factor > rope.low_freq_factor))
    f.fail("high_freq_factor", fmt::format("must exceed low_freq_factor > 0 (they are {} and {})",
                                           rope.high_freq_factor, rope.low_freq_factor));
  return rope;
}

// transformers' rules (modeling_rope_utils.py, RotaryEmbeddingConfigMixin): the parameters are `rope_scaling` when
// given and not null (4.x), else `rope_parameters` (5.x), else none (an empty object).
const char* rope_dict_field(const Fields& top) { return top.has("rope_scaling") ? "rope_scaling" : "rope_parameters"; }
nlohmann::json rope_dict(const Fields& top) {
  const char* field = rope_dict_field(top);
  nlohmann::json params = top.has(field) ? top.json().at(field) : nlohmann::json::object();
  if (!params.is_object()) top.fail(field, fmt::format("must be an object or null, not {}", params.dump()));
  return params;
}

// The RoPE of rope_dict(top); `default_theta` when neither it nor the top level gives one.
RopeConfig parse_rope(const Fields& top, int64_t max_position_embeddings, double default_theta = 10000.0,
                      int64_t class_original_length = 0) {
  return parse_rope_params(rope_dict(top), rope_dict_field(top), top, default_theta, max_position_embeddings,
                           class_original_length);
}

// The two RoPEs of Gemma-3 and OLMo-3: `rope` for their full-attention layers, `local_rope` for their sliding-window
// ones. 5.x spells them rope_parameters {"full_attention": {...}, "sliding_attention": {...}}; 4.x gives rope_theta
// and rope_scaling, which Gemma3TextConfig and Olmo3Config read for the full-attention layers only, the sliding ones
// taking `sliding_theta_field` (Gemma-3's rope_local_base_freq) or, without one, the default theta (as Olmo3Config
// does: rope_theta reaches its full-attention layers only).
struct LayeredRopeDefaults {
  double full_theta;
  double sliding_theta;
  const char* sliding_theta_field;  // may be nullptr
};

void parse_layered_rope(const Fields& top, ModelConfig& c, const LayeredRopeDefaults& d) {
  const bool nested = top.has("rope_parameters") && top.json().at("rope_parameters").is_object() &&
                      (top.json().at("rope_parameters").contains("full_attention") ||
                       top.json().at("rope_parameters").contains("sliding_attention"));
  auto sliding_theta = [&] {
    return d.sliding_theta_field != nullptr ? top.number(d.sliding_theta_field, d.sliding_theta) : d.sliding_theta;
  };
  if (!nested) {
    c.rope = parse_rope(top, c.max_position_embeddings, d.full_theta);
    RopeConfig local;
    local.theta = sliding_theta();
    if (!(local.theta > 1.0) || !std::isfinite(local.theta))
      top.fail(d.sliding_theta_field != nullptr ? d.sliding_theta_field : "rope_theta",
               fmt::format("must be greater than 1, not {}", local.theta));
    c.local_rope = local;
    return;
  }
  const nlohmann::json& all = top.json().at("rope_parameters");
  const Fields f(all, fmt::format("{}: field 'rope_parameters'", top.source()));
  for (const auto& [key, value] : all.items())
    if (key != "full_attention" && key != "sliding_attention")
      f.fail(key, "is not a layer type (\"full_attention\", \"sliding_attention\")");
  auto params = [&](const std::string& type) {
    const nlohmann::json p = f.has(type) ? all.at(type) : nlohmann::json::object();
    if (!p.is_object()) f.fail(type, fmt::format("must be an object, not {}", p.dump()));
    // The nested dict's own theta, else the top level's (as above), else the default.
    nlohmann::json with_theta = p;
    const bool full = type == "full_attention";
    if (!with_theta.contains("rope_theta"))
      with_theta["rope_theta"] = full ? top.number("rope_theta", d.full_theta) : sliding_theta();
    RopeConfig rope = parse_rope_params(with_theta, "rope_parameters." + type, top,
                                        full ? d.full_theta : d.sliding_theta, c.max_position_embeddings, 0);
    // _compute_yarn_parameters reads `truncate` from rope_parameters itself, here the dict of layer types.
    rope.truncate = true;
    return rope;
  };
  c.rope = params("full_attention");
  c.local_rope = params("sliding_attention");
}

// The MLP's activation. transformers reads `hidden_act` for Llama, Qwen, Mistral and Gemma (where the legacy
// "gelu" of the first releases means the tanh approximation: GemmaConfig rewrites it), `hidden_activation` for
// Gemma-2 and Gemma-3 (where "gelu" is the exact GELU).
Activation parse_activation(const Fields& f, Architecture arch) {
  if (arch == Architecture::gemma || arch == Architecture::gemma2 || arch == Architecture::gemma3) {
    const bool gemma2 = arch != Architecture::gemma;  // Gemma-2 and Gemma-3 read hidden_activation
    const std::string field = gemma2 ? "hidden_activation" : "hidden_act";
    const std::string act = f.string(field, "gelu_pytorch_tanh");
    if (act == "gelu_pytorch_tanh") return Activation::gelu_tanh;
    if (act == "gelu") return gemma2 ? Activation::gelu : Activation::gelu_tanh;
    f.fail(field, fmt::format("is \"{}\"; supported: \"gelu_pytorch_tanh\", \"gelu\"", act));
  }
  if (arch == Architecture::apertus) {  // ApertusMLP: ungated, xIELU (another hidden_act is another MLP's)
    const std::string act = f.string("hidden_act", "xielu");
    if (act != "xielu")
      f.fail("hidden_act", fmt::format("is \"{}\"; Apertus's only supported one is \"xielu\"", act));
    return Activation::xielu;
  }
  const std::string act = f.string("hidden_act", "silu");
  if (act != "silu") f.fail("hidden_act", fmt::format("is \"{}\"; only \"silu\" is supported", act));
  return Activation::silu;
}

// A soft cap: absent gives Gemma2Config's default, null none (0), otherwise a positive number.
double parse_softcap(const Fields& f, const std::string& field, double fallback) {
  if (!f.json().contains(field)) return fallback;
  if (f.json().at(field).is_null()) return 0.0;
  const double cap = f.number(field);
  if (!(cap > 0.0) || !std::isfinite(cap))
    f.fail(field, fmt::format("must be positive and finite, or null, not {}", f.value_text(field)));
  return cap;
}

void require_positive(const Fields& f, const std::string& field, int64_t value) {
  if (value <= 0) f.fail(field, fmt::format("must be positive, not {}", value));
}

// config.json's `sliding_window`: absent gives the configs' default (4096), null no window (0), else a positive
// integer.
int64_t window_field(const Fields& f) {
  if (!f.json().contains("sliding_window")) return 4096;
  if (!f.has("sliding_window")) return 0;
  const int64_t window = f.integer("sliding_window");
  require_positive(f, "sliding_window", window);
  return window;
}

// Which layers are of type `marked`: `layer_types` (`marked` or "full_attention", one per layer; `field` names it)
// when given, else `by_default(layer)`. The older names transformers reads as today's are read too ("mamba" is
// "linear_attention", "attention" is "full_attention": Granite-4.0's releases).
std::vector<bool> layers_of_type(const Fields& f, int64_t num_layers, const char* marked,
                                 const std::function<bool(int64_t)>& by_default,
                                 const std::string& field = "layer_types") {
  std::vector<bool> flags(static_cast<std::size_t>(num_layers), false);
  if (f.has(field)) {
    const auto& types = f.json().at(field);
    if (!types.is_array() || static_cast<int64_t>(types.size()) != num_layers)
      f.fail(field, fmt::format("must list num_hidden_layers={} layer types, not {}", num_layers, types.dump()));
    for (std::size_t i = 0; i < types.size(); ++i) {
      const nlohmann::json type = types[i] == "mamba"     ? nlohmann::json("linear_attention")
                                  : types[i] == "attention" ? nlohmann::json("full_attention")
                                                            : types[i];
      if (type == marked) flags[i] = true;
      else if (type != "full_attention")
        f.fail(field, fmt::format("contains {}; supported: \"{}\", \"full_attention\"", types[i].dump(), marked));
    }
  } else {
    for (int64_t i = 0; i < num_layers; ++i) flags[static_cast<std::size_t>(i)] = by_default(i);
  }
  return flags;
}

// Which layers slide: `layer_types` ("sliding_attention" or "full_attention") when given, else
// `slides_by_default(layer)`.
std::vector<bool> sliding_layers_of(const Fields& f, int64_t num_layers,
                                    const std::function<bool(int64_t)>& slides_by_default) {
  return layers_of_type(f, num_layers, "sliding_attention", slides_by_default);
}

bool any_of(const std::vector<bool>& flags) { return std::find(flags.begin(), flags.end(), true) != flags.end(); }

// Gemma, Gemma-2 and Gemma-3 (GemmaModel, Gemma2Model, Gemma3TextModel): embeddings scaled by sqrt(D), (1 + w)
// norms; Gemma-2 and Gemma-3 also their output norms, query_pre_attn_scalar, soft caps (Gemma-2's by default,
// Gemma-3's only when set), and sliding windows on the layers `layer_types` names (Gemma-2: every other layer from
// the first; Gemma-3: all but every sliding_window_pattern-th); Gemma-3 also its (1 + w) query and key head norms and
// its two RoPEs.
void parse_gemma(const Fields& f, ModelConfig& c) {
  c.scaled_embeddings = true;
  c.unit_offset_norms = true;
  c.norms_scale_in_float32 = true;
  if (f.boolean("use_bidirectional_attention", false))
    f.fail("use_bidirectional_attention", "is true; only causal attention is supported");
  if (c.architecture == Architecture::gemma) return;
  const bool gemma3 = c.architecture == Architecture::gemma3;
  c.output_norms = true;
  c.qk_norm = gemma3;
  const double scalar = f.number("query_pre_attn_scalar", 256.0);
  c.attention_scale = std::pow(scalar, -0.5);
  if (!(scalar > 0.0) || !std::isfinite(c.attention_scale) || !(c.attention_scale > 0.0))
    f.fail("query_pre_attn_scalar", fmt::format("must be a positive (normal) number, not {}", scalar));
  c.attention_softcap = parse_softcap(f, "attn_logit_softcapping", gemma3 ? 0.0 : 50.0);
  c.logit_softcap = parse_softcap(f, "final_logit_softcapping", gemma3 ? 0.0 : 30.0);

  const int64_t pattern = gemma3 ? f.integer("sliding_window_pattern", 6) : 2;
  require_positive(f, "sliding_window_pattern", pattern);
  c.sliding_layers = sliding_layers_of(f, c.num_layers, [pattern, gemma3](int64_t i) {
    return gemma3 ? (i + 1) % pattern != 0 : i % 2 == 0;
  });
  c.sliding_window = any_of(c.sliding_layers) ? window_field(f) : 0;
  if (gemma3) parse_layered_rope(f, c, {1e6, 1e4, "rope_local_base_freq"});
}

// SmolLM3's layers (SmolLM3Config): `no_rope_layers` lists 1 for a layer with RoPE and 0 for one without, by default
// 0 on every no_rope_layer_interval-th layer (4); with use_sliding_window and a window, the layers `layer_types` names
// slide, by default those without RoPE.
void parse_smollm3_layers(const Fields& f, ModelConfig& c) {
  const auto layers = static_cast<std::size_t>(c.num_layers);
  c.nope_layers.assign(layers, false);
  if (f.has("no_rope_layers")) {
    const auto& flags = f.json().at("no_rope_layers");
    if (!flags.is_array() || flags.size() != layers)
      f.fail("no_rope_layers", fmt::format("must list num_hidden_layers={} flags (1: RoPE, 0: none), not {}",
                                           c.num_layers, flags.dump()));
    for (std::size_t i = 0; i < layers; ++i) {
      if (flags[i] != 0 && flags[i] != 1)
        f.fail("no_rope_layers", fmt::format("must hold 1 (RoPE) or 0 (none), not {}", flags[i].dump()));
      c.nope_layers[i] = flags[i] == 0;
    }
  } else {
    const int64_t interval = f.integer("no_rope_layer_interval", 4);
    require_positive(f, "no_rope_layer_interval", interval);
    for (int64_t i = 0; i < c.num_layers; ++i) c.nope_layers[static_cast<std::size_t>(i)] = (i + 1) % interval == 0;
  }
  if (f.boolean("use_sliding_window", false) && f.has("sliding_window")) {
    c.sliding_window = f.integer("sliding_window");
    require_positive(f, "sliding_window", c.sliding_window);
    c.sliding_layers = sliding_layers_of(f, c.num_layers, [&c](int64_t i) { return !c.rotates(i); });
    if (!any_of(c.sliding_layers)) c.sliding_window = 0;
  }
}

// EXAONE-4's layers (Exaone4Config, Exaone4Attention, Olmo2DecoderLayer): OLMo-2's norms on the blocks' outputs only
// (but Llama's RMSNorm, rounding before the weight), an RMSNorm over each query and key head; with a window (4096 by
// default), the layers `layer_types` names slide, by default all but every sliding_window_pattern-th (4), and only
// they rotate (the others attend without position embedding); without one, every layer is full and rotates.
void parse_exaone4_layers(const Fields& f, ModelConfig& c) {
  c.input_norms = false;
  c.output_norms = true;
  c.qk_norm = true;
  c.sliding_window = window_field(f);
  if (c.sliding_window == 0) return;
  int64_t pattern = 0;  // every pattern-th layer is full (read only without layer_types)
  if (!f.has("layer_types")) {
    // (Exaone4Config spells the pattern as a count or, in its docstring, as a string such as "LLLG", which its
    // default layer_types cannot take: such a config must list layer_types.)
    if (f.has("sliding_window_pattern") && !f.json().at("sliding_window_pattern").is_number_integer())
      f.fail("sliding_window_pattern", fmt::format("is {}; without layer_types it must be a whole number of layers",
                                                   f.value_text("sliding_window_pattern")));
    pattern = f.integer("sliding_window_pattern", 4);
    require_positive(f, "sliding_window_pattern", pattern);
  }
  c.sliding_layers = sliding_layers_of(f, c.num_layers, [pattern](int64_t i) { return (i + 1) % pattern != 0; });
  c.nope_layers = c.sliding_layers;  // the full layers attend without RoPE
  c.nope_layers.flip();
  if (!any_of(c.sliding_layers)) {
    c.sliding_window = 0;
    c.sliding_layers.clear();
  }
}

// The largest width a config may give latent attention's sizes, experts and DeltaNet heads (2^32; real ones are
// thousands), so that sums and products of them cannot overflow.
constexpr int64_t kLargestWidth = int64_t{1} << 32;

// A size field (`fallback` when absent): positive and at most kLargestWidth.
int64_t width_field(const Fields& f, const char* field, int64_t fallback) {
  const int64_t value = f.integer(field, fallback);
  require_positive(f, field, value);
  if (value > kLargestWidth) f.fail(field, fmt::format("is {}, more than 2^32", value));
  return value;
}

// num_experts_per_tok (`fallback` when absent; none: required), from 1 to the m.num_experts experts the field
// `count` gave.
int64_t experts_per_token(const Fields& f, const MoeConfig& m, const char* count, std::optional<int64_t> fallback) {
  const int64_t k = f.integer("num_experts_per_tok", fallback);
  if (k <= 0 || k > m.num_experts)
    f.fail("num_experts_per_tok", fmt::format("must be from 1 to {}={}, not {}", count, m.num_experts, k));
  return k;
}

// The experts of Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, GraniteMoE and Qwen3.5-MoE, as their configs and SparseMoeBlock
// / TopKRouter classes define them (defaults: MixtralConfig's and GraniteMoeConfig's 8 experts, 2 per token;
// Qwen2MoeConfig's 60, 4, width 1408, shared expert 5632; Qwen3MoeConfig's 128, 8, width 768; OlmoeConfig's 64, 8;
// Qwen3.5-MoE's below). Mixtral always renormalises the k probabilities and weights in float32; GraniteMoE softmaxes
// the k largest logits; the others renormalise with norm_topk_prob. Qwen's layers have experts when (i + 1) is a
// multiple of decoder_sparse_step and i is not in mlp_only_layers.
void parse_experts(const Fields& f, ModelConfig& c) {
  const Architecture arch = c.architecture;
  const bool granite = arch == Architecture::granitemoe;
  const bool mixtral = arch == Architecture::mixtral;
  const bool qwen = arch == Architecture::qwen2_moe || arch == Architecture::qwen3_moe;
  MoeConfig& m = c.moe;
  if (arch == Architecture::qwen3_5_moe) {
    // Qwen3_5MoeTextConfig (Qwen3NextConfig's defaults): 256 experts of width moe_intermediate_size (512), 8 per
    // token, renormalised whatever norm_topk_prob says (its router always does), a gated shared expert of width
    // shared_expert_intermediate_size (512), in every layer.
    m.num_experts = f.integer("num_experts", 256);
    require_positive(f, "num_experts", m.num_experts);
    m.experts_per_token = experts_per_token(f, m, "num_experts", 8);
    m.expert_size = width_field(f, "moe_intermediate_size", 512);
    m.shared_expert_size = width_field(f, "shared_expert_intermediate_size", 512);
    m.normalize_weights = true;
    m.layers.assign(static_cast<std::size_t>(c.num_layers), true);
    return;
  }
  // Mixtral's count is num_local_experts; Qwen3MoeConfig reads num_experts and saves it as num_local_experts.
  const char* count = f.has("num_experts")         ? "num_experts"
                      : f.has("num_local_experts") ? "num_local_experts"
                      : mixtral || granite         ? "num_local_experts"
                                                   : "num_experts";
  m.num_experts = f.integer(count, mixtral || granite                  ? 8
                                   : arch == Architecture::qwen2_moe   ? 60
                                   : arch == Architecture::qwen3_moe   ? 128
                                                                       : 64);
  require_positive(f, count, m.num_experts);
  m.experts_per_token =
      experts_per_token(f, m, count, mixtral || granite ? 2 : arch == Architecture::qwen2_moe ? 4 : 8);
  m.expert_size = qwen ? f.integer("moe_intermediate_size", arch == Architecture::qwen2_moe ? 1408 : 768)
                       : c.intermediate_size;
  require_positive(f, "moe_intermediate_size", m.expert_size);
  m.normalize_weights = mixtral || (!granite && f.boolean("norm_topk_prob", false));
  m.softmax_top_logits = granite;
  m.stacked_experts = granite;
  m.float32_weights = mixtral;
  if (arch == Architecture::qwen2_moe) {
    m.shared_expert_size = f.integer("shared_expert_intermediate_size", 5632);
    require_positive(f, "shared_expert_intermediate_size", m.shared_expert_size);
  }
  m.layers.assign(static_cast<std::size_t>(c.num_layers), true);
  if (!qwen) return;
  const int64_t step = f.integer("decoder_sparse_step", 1);
  require_positive(f, "decoder_sparse_step", step);
  for (int64_t i = 0; i < c.num_layers; ++i) m.layers[static_cast<std::size_t>(i)] = (i + 1) % step == 0;
  if (f.has("mlp_only_layers")) {
    const auto& dense = f.json().at("mlp_only_layers");
    if (!dense.is_array()) f.fail("mlp_only_layers", fmt::format("must be a list of layers, not {}", dense.dump()));
    for (const auto& layer : dense) {
      if (!layer.is_number_integer())
        f.fail("mlp_only_layers", fmt::format("must list layer numbers, not {}", layer.dump()));
      const auto i = layer.get<int64_t>();
      if (i >= 0 && i < c.num_layers) m.layers[static_cast<std::size_t>(i)] = false;  // others name no layer
    }
  }
}

// gpt-oss's experts (GptOssMLP): num_local_experts (128) of width intermediate_size, num_experts_per_tok (4) per
// token weighted by the softmax of their router logits (the router has a bias), in every layer; the clamped SwiGLU
// with swiglu_limit (7) and swiglu_alpha (1.702).
void parse_gpt_oss_experts(const Fields& f, ModelConfig& c) {
  MoeConfig& m = c.moe;
  m.num_experts = f.integer("num_local_experts", 128);
  require_positive(f, "num_local_experts", m.num_experts);
  m.experts_per_token = experts_per_token(f, m, "num_local_experts", 4);
  m.expert_size = c.intermediate_size;
  m.softmax_top_logits = true;
  m.transposed_experts = true;
  for (const auto& [field, value, fallback] :
       {std::tuple{"swiglu_limit", &m.swiglu_limit, 7.0}, std::tuple{"swiglu_alpha", &m.swiglu_alpha, 1.702}}) {
    *value = f.number(field, fallback);
    if (!(*value > 0.0) || !std::isfinite(*value))
      f.fail(field, fmt::format("must be positive and finite, not {}", *value));
  }
  m.layers.assign(static_cast<std::size_t>(c.num_layers), true);
}

// GptOssConfig's RoPE when config.json gives none.
const nlohmann::json kGptOssRope = {{"rope_type", "yarn"}, {"factor", 32.0}, {"beta_fast", 32.0}, {"beta_slow", 1.0},
                                    {"truncate", false}, {"original_max_position_embeddings", 4096}};
// ApertusConfig's, theta included (a top-level rope_theta without a dict does not reach it).
const nlohmann::json kApertusRope = {{"rope_type", "llama3"},     {"rope_theta", 12000000.0},
                                     {"factor", 8.0},             {"original_max_position_embeddings", 8192},
                                     {"low_freq_factor", 1.0},    {"high_freq_factor", 4.0}};
// Ministral3Config's (YaRN from 16,384 positions, and Llama-4's query scale from there on), but for its
// max_position_embeddings, which YaRN does not read when the factor is given.
const nlohmann::json kMinistral3Rope = {
    {"rope_type", "yarn"}, {"rope_theta", 1000000.0}, {"factor", 16.0}, {"original_max_position_embeddings", 16384},
    {"beta_fast", 32.0},   {"beta_slow", 1.0},        {"mscale", 1.0},  {"mscale_all_dim", 1.0},
    {"llama_4_scaling_beta", 0.1}};

// Ministral3Attention's query scale (Llama-4's attention temperature): llama_4_scaling_beta and
// original_max_position_embeddings of the RoPE dict (Ministral3Config's when config.json has none), which the
// attention reads whatever the RoPE's type; without them it cannot run.
void parse_llama4_query_scale(const Fields& top, ModelConfig& c) {
  const bool given = top.has("rope_scaling") || top.has("rope_parameters");
  const nlohmann::json params = given ? rope_dict(top) : kMinistral3Rope;
  const Fields f(params, fmt::format("{}: field '{}'", top.source(), rope_dict_field(top)));
  for (const char* key : {"llama_4_scaling_beta", "original_max_position_embeddings"})
    if (!f.has(key)) f.fail(key, "is missing (Ministral-3's attention scales its queries by it)");
  c.query_scale_beta = f.number("llama_4_scaling_beta");
  if (!std::isfinite(c.query_scale_beta))
    f.fail("llama_4_scaling_beta", fmt::format("must be finite, not {}", f.value_text("llama_4_scaling_beta")));
  c.query_scale_length = f.integer("original_max_position_embeddings");
  require_positive(f, "original_max_position_embeddings", c.query_scale_length);
}


// Qwen3.5 (Qwen3_5TextConfig, whose defaults are Qwen3NextConfig's): layer_types ("linear_attention" for a Gated
// DeltaNet layer, "full_attention"), by default three linear layers to one full (full_attention_interval, 4); the
// DeltaNet's sizes (linear_*: 16 key heads and 32 value heads of 128, a convolution of 4 taps); full-attention
// layers with q, k, v and o biases when attention_bias, (1 + w) query and key head norms and the output gate; RoPE
// on the first partial_rotary_factor (0.25) of each head. The RoPE dict's mrope_section and mrope_interleaved
// (multimodal RoPE) are not read: text positions are the same on its three axes, which makes it plain RoPE.
void parse_qwen3_5(const Fields& f, ModelConfig& c) {
  c.attention_bias = f.boolean("attention_bias", false);
  c.output_bias = c.attention_bias;
  c.qk_norm = true;
  c.norms_scale_in_float32 = true;  // Qwen3_5RMSNorm: x normed in float32 times (1 + w), then rounded
  c.unit_offset_norms = true;
  c.gated_attention = true;
  if (!f.boolean("attn_output_gate", true))
    f.fail("attn_output_gate", "is false; transformers' Qwen3.5 attention always gates its output");
  std::vector<bool> linear = layers_of_type(f, c.num_layers, "linear_attention", [&f](int64_t i) {
    const int64_t interval = f.integer("full_attention_interval", 4);  // (read only without layer_types)
    require_positive(f, "full_attention_interval", interval);
    return (i + 1) % interval != 0;
  });
  if (any_of(linear)) c.linear_attention_layers = std::move(linear);
  DeltaNetConfig& d = c.delta_net;
  d.key_heads = width_field(f, "linear_num_key_heads", 16);
  d.value_heads = width_field(f, "linear_num_value_heads", 32);
  d.key_head_dim = width_field(f, "linear_key_head_dim", 128);
  d.value_head_dim = width_field(f, "linear_value_head_dim", 128);
  d.conv_kernel = width_field(f, "linear_conv_kernel_dim", 4);
  if (d.value_heads % d.key_heads != 0)
    f.fail("linear_num_value_heads", fmt::format("is {}, which linear_num_key_heads={} does not divide",
                                                 d.value_heads, d.key_heads));
}


// A number of a JSON list, or the object transformers 5 writes for a non-finite float ({"__float__": "Infinity"};
// JSON has no literal for it; see parse_config_json).
std::optional<double> json_float(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  // ({"__float__": "Infinity"}, or a bare "Infinity" as some tools write it)
  const nlohmann::json* spelt = v.is_string() ? &v : nullptr;
  if (v.is_object() && v.size() == 1 && v.contains("__float__") && v.at("__float__").is_string())
    spelt = &v.at("__float__");
  if (spelt == nullptr) return std::nullopt;
  const std::string text = spelt->get<std::string>();
  if (text == "Infinity") return INFINITY;
  if (text == "-Infinity") return -INFINITY;
  if (text == "NaN") return NAN;
  return std::nullopt;
}

// GraniteMoeHybridConfig (Granite-4.0): Granite's multipliers (set with granite's) and attention (q, k, v and o with
// biases when attention_bias), RoPE on every attention layer with position_embedding_type "rope" and on none
// otherwise (the H releases' "nope"); layer_types (or layers_block_type) "mamba" or "attention" (today's
// "linear_attention" or "full_attention"), by default every layer Mamba-2; a shared MLP (shared_mlp: gate and up as
// one input_linear, output_linear) of shared_intermediate_size (1024) in every layer, GraniteMoE's experts
// (num_local_experts of intermediate_size, num_experts_per_tok per token) beside it unless num_local_experts is 0.
// The Mamba-2 layers: mamba_n_heads (128) heads of mamba_d_head ("auto": mamba_expand x D / heads), mamba_n_groups
// (1) groups of B and C of mamba_d_state (256), mamba_d_conv (4) taps with a bias (mamba_conv_bias), in_proj and
// out_proj with biases when mamba_proj_bias, chunks of mamba_chunk_size (256), dt clamped to time_step_limit.
void parse_granite4(const Fields& f, ModelConfig& c) {
  c.attention_bias = f.boolean("attention_bias", false);
  c.output_bias = c.attention_bias;
  c.mlp_bias = false;
  const std::string position = f.string("position_embedding_type", "nope");
  if (position != "rope" && position != "nope")
    f.fail("position_embedding_type", fmt::format("is \"{}\"; supported: \"rope\", \"nope\" or null", position));
  if (position != "rope") c.nope_layers.assign(static_cast<std::size_t>(c.num_layers), true);
  const std::string types_field = !f.has("layer_types") && f.has("layers_block_type") ? "layers_block_type"
                                                                                      : "layer_types";
  std::vector<bool> mamba =
      layers_of_type(f, c.num_layers, "linear_attention", [](int64_t) { return true; }, types_field);
  if (any_of(mamba)) c.linear_attention_layers = std::move(mamba);

  const int64_t shared = width_field(f, "shared_intermediate_size", 1024);
  const int64_t experts = f.integer("num_local_experts", 8);
  if (experts < 0) f.fail("num_local_experts", fmt::format("must be 0 or more, not {}", experts));
  if (experts == 0) {  // the dense releases: the shared MLP is the MLP
    c.intermediate_size = shared;
    c.fused_gate_up = true;
  } else {
    MoeConfig& m = c.moe;
    m.num_experts = experts;
    m.experts_per_token = experts_per_token(f, m, "num_local_experts", 2);
    m.expert_size = c.intermediate_size;
    m.softmax_top_logits = true;
    m.stacked_experts = true;
    m.shared_expert_size = shared;
    m.shared_expert_gated = false;
    m.layers.assign(static_cast<std::size_t>(c.num_layers), true);
  }

  Mamba2Config& n = c.mamba;
  n.heads = width_field(f, "mamba_n_heads", 128);
  n.groups = width_field(f, "mamba_n_groups", 1);
  n.state = width_field(f, "mamba_d_state", 256);
  n.conv_kernel = width_field(f, "mamba_d_conv", 4);
  n.chunk = width_field(f, "mamba_chunk_size", 256);
  const int64_t expand = width_field(f, "mamba_expand", 2);
  if (c.hidden_size > kLargestWidth / expand)
    f.fail("mamba_expand", fmt::format("is {}, which makes mamba_expand x hidden_size more than 2^32", expand));
  const int64_t inner = expand * c.hidden_size;
  if (inner % n.heads != 0)
    f.fail("mamba_n_heads", fmt::format("is {}, which does not divide mamba_expand x hidden_size = {}", n.heads,
                                        inner));
  const bool automatic = f.json().contains("mamba_d_head") && f.json().at("mamba_d_head") == "auto";
  n.head_dim = !f.has("mamba_d_head") || automatic ? inner / n.heads : f.integer("mamba_d_head");
  if (n.head_dim <= 0 || inner % n.head_dim != 0 || inner / n.head_dim != n.heads)  // (no product to overflow)
    f.fail("mamba_d_head", fmt::format("is {}; mamba_n_heads={} heads of it must make mamba_expand x hidden_size = {}",
                                       n.head_dim, n.heads, inner));
  if (n.heads % n.groups != 0)
    f.fail("mamba_n_groups", fmt::format("is {}, which does not divide mamba_n_heads={}", n.groups, n.heads));
  if (n.state > kLargestWidth / n.groups)
    f.fail("mamba_d_state", fmt::format("is {}, which makes mamba_n_groups x mamba_d_state more than 2^32", n.state));
  n.conv_bias = f.boolean("mamba_conv_bias", true);
  n.proj_bias = f.boolean("mamba_proj_bias", false);
  if (f.has("time_step_limit")) {
    const auto& limit = f.json().at("time_step_limit");
    auto bad = [&] {
      f.fail("time_step_limit", fmt::format("must be [min, max] with min <= max, not {}", limit.dump()));
    };
    if (!limit.is_array() || limit.size() != 2) bad();
    n.dt_min = json_float(limit[0]).value_or(NAN);
    n.dt_max = json_float(limit[1]).value_or(NAN);
    if (!(n.dt_min <= n.dt_max)) bad();  // (false for NaN)
  }
}

// DeepSeek's latent attention (DeepseekV2Attention, DeepseekV3Attention; the configs' defaults are V2's and V3's
// largest models'): q_lora_rank (null: one q_proj), kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim.
// Every head has its own keys and values (whatever num_key_value_heads says, as in transformers). The scale
// of q k^T is (nope + rope)^-1/2, times mscale(factor, mscale_all_dim)^2 when the RoPE is scaled and its dict gives
// mscale_all_dim (yarn_apply_mscale). V2 rotates adjacent pairs in float32 (complex products); V3 (and GLM-4.7-Flash,
// Glm4MoeLiteAttention) adjacent pairs in the model's dtype with rope_interleave (true by default), else rotate_half's
// halves.
void parse_latent_attention(const Fields& f, ModelConfig& c) {
  LatentAttentionConfig& a = c.mla;
  a.q_rank = f.has("q_lora_rank") ? f.integer("q_lora_rank") : f.json().contains("q_lora_rank") ? 0 : 1536;
  if (f.has("q_lora_rank")) require_positive(f, "q_lora_rank", a.q_rank);
  a.kv_rank = f.integer("kv_lora_rank", 512);
  a.nope_dim = f.integer("qk_nope_head_dim", 128);
  a.rope_dim = f.integer("qk_rope_head_dim", 64);
  a.v_dim = f.integer("v_head_dim", 128);
  require_positive(f, "kv_lora_rank", a.kv_rank);
  require_positive(f, "qk_nope_head_dim", a.nope_dim);
  require_positive(f, "qk_rope_head_dim", a.rope_dim);
  require_positive(f, "v_head_dim", a.v_dim);
  // (Bounded so that the sums and products of widths below stay far inside int64.)
  const std::pair<const char*, int64_t> widths[] = {
      {"q_lora_rank", a.q_rank}, {"kv_lora_rank", a.kv_rank}, {"qk_nope_head_dim", a.nope_dim},
      {"qk_rope_head_dim", a.rope_dim}, {"v_head_dim", a.v_dim}};
  for (const auto& [field, width] : widths)
    if (width > kLargestWidth) f.fail(field, fmt::format("is {}, more than any model's (at most {})", width,
                                                         kLargestWidth));
  if (a.rope_dim % 2 != 0) f.fail("qk_rope_head_dim", fmt::format("must be even for RoPE, not {}", a.rope_dim));
  c.head_dim = a.nope_dim + a.rope_dim;
  c.rotary_dim = a.rope_dim;
  c.attention_bias = f.boolean("attention_bias", false);  // q_a_proj's, kv_a_proj_with_mqa's and o_proj's
  c.output_bias = c.attention_bias;
  c.rope_style = c.architecture == Architecture::deepseek_v2 ? RopeStyle::interleaved_in_float32
                 : f.boolean("rope_interleave", true)        ? RopeStyle::interleaved
                                                             : RopeStyle::rotate_half;
  c.attention_scale = std::pow(static_cast<double>(c.head_dim), -0.5);
  const nlohmann::json rope = rope_dict(f);
  const Fields r(rope, fmt::format("{}: field '{}'", f.source(), rope_dict_field(f)));
  const double all_dim = r.number("mscale_all_dim", 0.0);
  if (c.rope.type != "default" && all_dim != 0.0 && c.rope.factor > 1.0) {
    const double m = 0.1 * all_dim * std::log(c.rope.factor) + 1.0;
    c.attention_scale *= m * m;
  }
  if (!(c.attention_scale > 0.0) || !std::isfinite(c.attention_scale))
    r.fail("mscale_all_dim", fmt::format("makes the attention's scale {}, which is not a positive number",
                                         c.attention_scale));
}

// DeepSeek's experts (DeepseekV2Moe / DeepseekV3MoE / Glm4MoeLiteMoE / Glm4MoeMoE): n_routed_experts of width
// moe_intermediate_size, num_experts_per_tok per token, n_shared_experts shared ones (one ungated MLP of
// n_shared_experts times that width), dense MLPs in the first first_k_dense_replace layers (GLM-4.7-Flash: where
// mlp_layer_types says "dense"; by default layer 0). V2's router: softmax in float32, the k best ("greedy"), or the k
// best among the topk_group groups (of n_group) with the best single score ("group_limited_greedy"); never
// renormalised. V3's and GLM's (GLM-4.5's with its own defaults): sigmoid in float32, the k best of the scores plus
// e_score_correction_bias among the topk_group groups with the best sums of two biased scores ("noaux_tc"),
// renormalised with norm_topk_prob. All weight by routed_scaling_factor, in float32. Configs whose routing transformers
// would not compute as they ask (another scoring_func or topk_method, V2's norm_topk_prob, a moe_layer_freq other than
// 1) are refused.
void parse_deepseek_experts(const Fields& f, ModelConfig& c) {
  const bool glm = c.architecture == Architecture::glm4_moe_lite, glm45 = c.architecture == Architecture::glm4_moe;
  const bool v3 = c.architecture == Architecture::deepseek_v3 || glm || glm45;  // (sigmoid routing)
  MoeConfig& m = c.moe;
  m.num_experts = f.integer("n_routed_experts", glm45 ? 128 : v3 && !glm ? 256 : 64);
  require_positive(f, "n_routed_experts", m.num_experts);
  m.experts_per_token =
      experts_per_token(f, m, "n_routed_experts", v3 ? std::optional<int64_t>(glm ? 4 : 8) : std::nullopt);
  m.expert_size = f.integer("moe_intermediate_size", glm ? 1536 : glm45 ? 1408 : v3 ? 2048 : 1407);
  require_positive(f, "moe_intermediate_size", m.expert_size);
  const int64_t shared = f.integer("n_shared_experts", v3 ? 1 : 2);
  if (shared < 0 || shared > kLargestWidth / m.expert_size)
    f.fail("n_shared_experts", fmt::format("must be from 0 to {}, not {}", kLargestWidth / m.expert_size, shared));
  m.shared_expert_size = shared * m.expert_size;
  m.shared_expert_gated = false;
  m.float32_logits = true;
  m.float32_weights = true;
  m.routed_scaling_factor = f.number("routed_scaling_factor", glm ? 1.8 : glm45 ? 1.0 : v3 ? 2.5 : 1.0);
  if (!(m.routed_scaling_factor > 0.0) || !std::isfinite(m.routed_scaling_factor))
    f.fail("routed_scaling_factor", fmt::format("must be positive and finite, not {}", m.routed_scaling_factor));
  const std::string scoring = f.string("scoring_func", v3 ? "sigmoid" : "softmax");
  if (scoring != (v3 ? "sigmoid" : "softmax"))
    f.fail("scoring_func", fmt::format("is \"{}\"; {} scores experts by \"{}\"", scoring, to_string(c.architecture),
                                       v3 ? "sigmoid" : "softmax"));
  const std::string method = f.string("topk_method", v3 ? "noaux_tc" : "greedy");
  if (v3 ? method != "noaux_tc" : method != "greedy" && method != "group_limited_greedy")
    f.fail("topk_method", fmt::format("is \"{}\"; supported: {}", method,
                                      v3 ? "\"noaux_tc\"" : "\"greedy\", \"group_limited_greedy\""));
  const bool grouped = v3 || method == "group_limited_greedy";
  if (v3) {
    m.scoring = RouterScoring::sigmoid;
    m.choice_bias = true;
    m.normalize_weights = f.boolean("norm_topk_prob", true);
  } else if (f.boolean("norm_topk_prob", false)) {
    f.fail("norm_topk_prob", "is true; transformers' DeepseekV2 router never renormalises the weights");
  }
  if (grouped) {
    m.groups = f.integer("n_group", glm || glm45 ? 1 : v3 ? 8 : std::optional<int64_t>());
    m.groups_per_token = f.integer("topk_group", glm || glm45 ? 1 : v3 ? 4 : std::optional<int64_t>());
    require_positive(f, "n_group", m.groups);
    if (m.num_experts % m.groups != 0)
      f.fail("n_group", fmt::format("is {}, which does not divide n_routed_experts={}", m.groups, m.num_experts));
    if (m.groups_per_token <= 0 || m.groups_per_token > m.groups)
      f.fail("topk_group", fmt::format("must be from 1 to n_group={}, not {}", m.groups, m.groups_per_token));
    if (v3 && m.num_experts / m.groups < 2)
      f.fail("n_group", fmt::format("is {}, leaving groups of one expert; a group is ranked by its two best",
                                    m.groups));
    if (m.experts_per_token > m.groups_per_token * (m.num_experts / m.groups))
      f.fail("num_experts_per_tok", fmt::format("is {}, more than the {} experts of topk_group={} groups",
                                                m.experts_per_token, m.groups_per_token * (m.num_experts / m.groups),
                                                m.groups_per_token));
  }
  m.layers.assign(static_cast<std::size_t>(c.num_layers), true);
  if (glm) {  // Glm4MoeLiteConfig: mlp_layer_types, "dense" or "sparse" per layer; by default layer 0 dense
    m.layers[0] = false;
    if (f.has("mlp_layer_types")) {
      const auto& types = f.json().at("mlp_layer_types");
      if (!types.is_array() || static_cast<int64_t>(types.size()) != c.num_layers)
        f.fail("mlp_layer_types", fmt::format("must list num_hidden_layers={} MLP types, not {}", c.num_layers,
                                              types.dump()));
      for (std::size_t i = 0; i < types.size(); ++i) {
        if (types[i] != "dense" && types[i] != "sparse")
          f.fail("mlp_layer_types", fmt::format("contains {}; supported: \"dense\", \"sparse\"", types[i].dump()));
        m.layers[i] = types[i] == "sparse";
      }
    }
    return;
  }
  if (f.integer("moe_layer_freq", 1) != 1)
    f.fail("moe_layer_freq", fmt::format("is {}; only 1 is supported (experts in every layer from "
                                         "first_k_dense_replace on)", f.value_text("moe_layer_freq")));
  const int64_t dense = f.integer("first_k_dense_replace", glm45 ? 1 : v3 ? 3 : 0);
  if (dense < 0) f.fail("first_k_dense_replace", fmt::format("must be 0 or more, not {}", dense));
  for (int64_t i = 0; i < std::min(dense, c.num_layers); ++i) m.layers[static_cast<std::size_t>(i)] = false;
}

}  // namespace

std::string to_string(Architecture arch) {
  for (const auto& a : kArchitectures)
    if (a.architecture == arch) return a.model_type;
  return "?";
}

namespace {

// A decoder's config: a text model's config.json, or a multimodal one's text_config.
ModelConfig parse_language_model(const Fields& f, Architecture architecture) {
  ModelConfig c;
  c.architecture = architecture;
  const bool granite4 = c.architecture == Architecture::granitemoehybrid;
  const bool granite =
      c.architecture == Architecture::granite || c.architecture == Architecture::granitemoe || granite4;
  const bool ministral3 = c.architecture == Architecture::ministral3;
  const bool mistral =
      c.architecture == Architecture::mistral || c.architecture == Architecture::ministral || ministral3;
  const bool llama = c.architecture == Architecture::llama || mistral || granite;
  const bool phi = c.architecture == Architecture::phi3;
  const bool gemma = c.architecture == Architecture::gemma || c.architecture == Architecture::gemma2 ||
                     c.architecture == Architecture::gemma3;
  const bool olmo = c.architecture == Architecture::olmo2 || c.architecture == Architecture::olmo3;
  const bool qwen = c.architecture == Architecture::qwen2 || c.architecture == Architecture::qwen3;
  const bool mixtral = c.architecture == Architecture::mixtral;
  const bool olmoe = c.architecture == Architecture::olmoe;
  const bool glm = c.architecture == Architecture::glm || c.architecture == Architecture::glm4;
  const bool smollm3 = c.architecture == Architecture::smollm3;
  const bool cohere = c.architecture == Architecture::cohere || c.architecture == Architecture::cohere2;
  const bool qwen_moe = c.architecture == Architecture::qwen2_moe || c.architecture == Architecture::qwen3_moe;
  const bool deepseek = c.architecture == Architecture::deepseek_v2 || c.architecture == Architecture::deepseek_v3 ||
                        c.architecture == Architecture::glm4_moe_lite;  // (latent attention)
  const bool gpt_oss = c.architecture == Architecture::gpt_oss;
  const bool apertus = c.architecture == Architecture::apertus;
  const bool exaone = c.architecture == Architecture::exaone4;
  const bool seed = c.architecture == Architecture::seed_oss;
  const bool glm45 = c.architecture == Architecture::glm4_moe;  // GLM-4.5's: standard attention, DeepSeek-V3's experts
  const bool qwen35_moe = c.architecture == Architecture::qwen3_5_moe;
  const bool qwen35 = c.architecture == Architecture::qwen3_5 || qwen35_moe;

  c.hidden_size = f.integer("hidden_size");
  // (Qwen3.5-MoE has no dense MLP, and its config no intermediate_size: its experts' width stands in.)
  c.intermediate_size = qwen35_moe ? f.integer("intermediate_size", f.integer("moe_intermediate_size", 512))
                                   : f.integer("intermediate_size");
  c.num_layers = f.integer("num_hidden_layers");
  c.num_heads = f.integer("num_attention_heads");
  c.vocab_size = f.integer("vocab_size");
  require_positive(f, "hidden_size", c.hidden_size);
  require_positive(f, "intermediate_size", c.intermediate_size);
  require_positive(f, "num_hidden_layers", c.num_layers);
  require_positive(f, "num_attention_heads", c.num_heads);
  require_positive(f, "vocab_size", c.vocab_size);
  // (Latent attention expands keys and values for every head, whatever num_key_value_heads says: DeepseekV3Config's
  // default is 128 for any number of heads.)
  c.num_kv_heads = deepseek ? c.num_heads : f.integer("num_key_value_heads", c.num_heads);
  require_positive(f, "num_key_value_heads", c.num_kv_heads);
  if (c.num_heads % c.num_kv_heads != 0)
    f.fail("num_key_value_heads", fmt::format("is {}, which does not divide num_attention_heads={}",
                                              c.num_kv_heads, c.num_heads));
  // (DeepSeek's: set by parse_latent_attention below, whatever head_dim says: its configs save the rotated size there.)
  if (f.has("head_dim") || c.architecture == Architecture::qwen3 || gemma || glm || deepseek || gpt_oss || seed ||
      ministral3 || qwen35) {
    // (the configs' defaults, whatever D / H is)
    c.head_dim = f.integer("head_dim", gemma || qwen35 ? 256 : gpt_oss ? 64 : 128);
    require_positive(f, "head_dim", c.head_dim);
  } else {
    if (c.hidden_size % c.num_heads != 0)
      f.fail("num_attention_heads", fmt::format("is {}, which does not divide hidden_size={} (and head_dim is not "
                                                "given)", c.num_heads, c.hidden_size));
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) f.fail("head_dim", fmt::format("must be even for RoPE, not {}", c.head_dim));
  c.attention_scale = std::pow(static_cast<double>(c.head_dim), -0.5);

  const bool v2 = c.architecture == Architecture::deepseek_v2, flash = c.architecture == Architecture::glm4_moe_lite;
  const bool long_context = mistral || mixtral || glm || glm45 || gpt_oss || c.architecture == Architecture::gemma3;
  const int64_t default_positions = ministral3                            ? 262144
                                    : long_context                        ? 131072
                                    : llama || olmo || v2 || exaone       ? 2048
                                    : seed                                ? 524288
                                    : apertus                             ? 65536
                                    : flash                               ? 202752
                                    : phi || olmoe || deepseek            ? 4096
                                    : gemma || cohere                     ? 8192
                                                                          : 32768;
  c.max_position_embeddings = f.integer("max_position_embeddings", default_positions);
  require_positive(f, "max_position_embeddings", c.max_position_embeddings);
  const bool eps_1e5 = olmo || phi || mixtral || olmoe || flash || gpt_oss || apertus || exaone || glm45 || ministral3;
  c.rms_norm_eps = f.number("rms_norm_eps", eps_1e5 ? 1e-5 : glm ? 1.5625e-7 : 1e-6);
  if (!(c.rms_norm_eps > 0.0)) f.fail("rms_norm_eps", fmt::format("must be positive, not {}", c.rms_norm_eps));
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", gemma || smollm3 || cohere);
  // (Gemma-3's two RoPEs: in parse_gemma.)
  // (Gemma-3's and OLMo-3's two RoPEs: below.)
  if (gpt_oss && !f.has("rope_scaling") && !f.has("rope_parameters"))  // GptOssConfig's default: YaRN
    c.rope = parse_rope_params(kGptOssRope, "rope_parameters", f, 150000.0, c.max_position_embeddings, 0);
  else if (apertus && !f.has("rope_scaling") && !f.has("rope_parameters"))  // ApertusConfig's: Llama-3's
    c.rope = parse_rope_params(kApertusRope, "rope_parameters", f, 12000000.0, c.max_position_embeddings, 0);
  else if (ministral3 && !f.has("rope_scaling") && !f.has("rope_parameters"))  // Ministral3Config's: YaRN
    c.rope = parse_rope_params(kMinistral3Rope, "rope_parameters", f, 1000000.0, c.max_position_embeddings, 0);
  else if (c.architecture != Architecture::gemma3 && c.architecture != Architecture::olmo3)
    c.rope = parse_rope(f, c.max_position_embeddings, mixtral ? 1e6 : gpt_oss ? 150000.0 : 10000.0, phi ? 4096 : 0);
  c.activation = parse_activation(f, c.architecture);

  if (phi) {
    // Phi3Attention: qkv_proj and o_proj, Phi3MLP: gate_up_proj and down_proj, none with a bias; the window (Phi-3
    // mini 4k's 2047) on every layer when set; RoPE on the first partial_rotary_factor of each head (Phi-4-mini's
    // 0.75), the RoPE dict's factor, else the top level's.
    c.fused_qkv = true;
    c.fused_gate_up = true;
  }
  if (cohere) {
    // CohereDecoderLayer: attention and MLP side by side on one LayerNorm (no bias) of the input; CohereAttention:
    // per-head LayerNorms of queries and keys with use_qk_norm, RoPE on adjacent pairs computed in float32;
    // CohereForCausalLM: logits times logit_scale (0.0625 by default). The norms' epsilon is layer_norm_eps.
    c.layer_norms = true;
    c.parallel_blocks = true;
    c.rope_style = RopeStyle::interleaved_in_float32;
    c.qk_norm = c.architecture == Architecture::cohere && f.boolean("use_qk_norm", false);
    c.rms_norm_eps = f.number("layer_norm_eps", 1e-5);
    if (!(c.rms_norm_eps > 0.0)) f.fail("layer_norm_eps", fmt::format("must be positive, not {}", c.rms_norm_eps));
    c.logit_scale = f.number("logit_scale", 0.0625);
    if (!(c.logit_scale > 0.0) || !std::isfinite(c.logit_scale))
      f.fail("logit_scale", fmt::format("must be positive and finite, not {}", c.logit_scale));
    if (c.architecture == Architecture::cohere2) {
      // Cohere2Config: three sliding-window layers (4096) to one full-attention layer (sliding_window_pattern)
      // unless layer_types says which; Cohere2Attention rotates queries and keys where it slides only (so with a
      // null window, nowhere).
      const int64_t pattern = f.integer("sliding_window_pattern", 4);
      require_positive(f, "sliding_window_pattern", pattern);
      c.sliding_layers = sliding_layers_of(f, c.num_layers, [pattern](int64_t i) { return (i + 1) % pattern != 0; });
      c.sliding_window = window_field(f);
      c.nope_layers.resize(c.sliding_layers.size());
      for (std::size_t i = 0; i < c.sliding_layers.size(); ++i)
        c.nope_layers[i] = !(c.sliding_layers[i] && c.sliding_window > 0);
      if (c.sliding_window == 0) c.sliding_layers.clear();
    }
  }
  if (glm) {
    // GlmAttention: q, k and v with biases when attention_bias (true by default), o_proj none; GlmMLP: gate_up_proj
    // and down_proj, no biases; RoPE over the first partial_rotary_factor (0.5 by default) of each head, on adjacent
    // pairs; Glm4DecoderLayer: norms on the attention's and the MLP's outputs too.
    c.fused_gate_up = true;
    c.rope_style = RopeStyle::interleaved;
    c.attention_bias = f.boolean("attention_bias", true);
    c.output_norms = c.architecture == Architecture::glm4;
  }
  // The rotated share: the RoPE dict's, else the top level's, else the class's (GlmConfig's 0.5).
  if ((phi || glm || glm45 || qwen35) && !rope_dict(f).contains("partial_rotary_factor"))
    c.rope.partial_rotary_factor = f.number("partial_rotary_factor", glm || glm45 ? 0.5 : qwen35 ? 0.25 : 1.0);
  if ((phi || mixtral) && f.has("sliding_window")) {
    c.sliding_window = f.integer("sliding_window", 0);
    require_positive(f, "sliding_window", c.sliding_window);
    c.sliding_layers.assign(static_cast<std::size_t>(c.num_layers), true);  // every layer
  }
  if (mistral) {
    // MistralConfig's window is 4096 unless config.json says null (v0.2 and later); every layer slides. Ministral's
    // slide where layer_types says (by default every layer, as MinistralConfig fills it in). Ministral-3's window is
    // null unless given, and then on every layer (its model is Mistral's, which reads no layer_types).
    c.sliding_window = ministral3 && !f.json().contains("sliding_window") ? 0 : window_field(f);
    if (c.sliding_window > 0)
      c.sliding_layers = c.architecture == Architecture::ministral
                             ? sliding_layers_of(f, c.num_layers, [](int64_t) { return true; })
                             : std::vector<bool>(static_cast<std::size_t>(c.num_layers), true);
    if (!any_of(c.sliding_layers)) {
      c.sliding_window = 0;
      c.sliding_layers.clear();
    }
  }
  if (llama || gemma || olmo || olmoe || smollm3 || cohere || apertus) {
    // LlamaAttention (and GemmaAttention, Gemma2Attention, Olmo2Attention) give all four projections a bias when
    // attention_bias; LlamaMLP all three when mlp_bias (MistralAttention and MistralMLP have none, and their configs
    // carry neither flag; Gemma's and OLMo-2's MLPs never have one).
    c.attention_bias = f.boolean("attention_bias", false);
    c.output_bias = c.attention_bias;
    c.mlp_bias = (llama || smollm3) && f.boolean("mlp_bias", false);
  }
  if (gemma) parse_gemma(f, c);
  if (granite) {
    // GraniteConfig: every multiplier 1 by default, attention_multiplier replacing Dh^-1/2 (1 by default, too).
    auto multiplier = [&](const std::string& field) {
      const double v = f.number(field, 1.0);
      if (!(v > 0.0) || !std::isfinite(v)) f.fail(field, fmt::format("must be positive and finite, not {}", v));
      return v;
    };
    c.embedding_multiplier = multiplier("embedding_multiplier");
    c.residual_multiplier = multiplier("residual_multiplier");
    c.logits_scaling = multiplier("logits_scaling");
    c.attention_scale = multiplier("attention_multiplier");
  }
  if (olmo) {
    // Olmo2DecoderLayer: h = h + post_attention_layernorm(attention(h)), h = h + post_feedforward_layernorm(mlp(h));
    // Olmo2Attention: q_norm and k_norm over the whole projected query and key; Olmo2RMSNorm multiplies by its
    // weight before rounding.
    c.input_norms = false;
    c.output_norms = true;
    c.qk_norm = true;
    c.qk_norm_whole = true;
    c.norms_scale_in_float32 = true;
  }
  if (olmoe) {
    // OlmoeAttention: q_norm and k_norm over the whole projected query and key (norms as Llama's), then q, k and v
    // clamped to [-clip_qkv, clip_qkv] when clip_qkv is set; OlmoeDecoderLayer: Llama's pre-norm blocks.
    c.qk_norm = true;
    c.qk_norm_whole = true;
    if (f.has("clip_qkv")) {
      c.clip_qkv = f.number("clip_qkv");
      if (!(c.clip_qkv > 0.0) || !std::isfinite(c.clip_qkv))
        f.fail("clip_qkv", fmt::format("must be positive and finite, or null, not {}", f.value_text("clip_qkv")));
    }
  }
  if (qwen_moe) {
    // Qwen2MoeAttention: q/k/v biases when qkv_bias (true by default), o_proj none; Qwen3MoeAttention: Qwen3's.
    // Windows only with use_sliding_window: Qwen3-MoE's on every layer, Qwen2-MoE's on the layers layer_types
    // names, by default every other one (from the first) below max_window_layers.
    const bool qwen3_moe = c.architecture == Architecture::qwen3_moe;
    if (qwen3_moe) {
      c.attention_bias = f.boolean("attention_bias", false);
      c.output_bias = c.attention_bias;
      c.qk_norm = true;
    } else {
      c.attention_bias = f.boolean("qkv_bias", true);
    }
    if (f.boolean("use_sliding_window", false)) {
      const int64_t below = f.integer("max_window_layers", 28);
      std::vector<bool> sliding = qwen3_moe ? std::vector<bool>(static_cast<std::size_t>(c.num_layers), true)
                                            : sliding_layers_of(f, c.num_layers, [below](int64_t i) {
                                                return (i + 1) % 2 != 0 && i < below;
                                              });
      c.sliding_window = any_of(sliding) ? window_field(f) : 0;
      if (c.sliding_window > 0) c.sliding_layers = std::move(sliding);
    }
  }
  if (mixtral || olmoe || qwen_moe || qwen35_moe || c.architecture == Architecture::granitemoe) parse_experts(f, c);
  if (deepseek) {
    if (f.boolean("mlp_bias", false)) f.fail("mlp_bias", "is true; only MLPs without biases are supported");
    parse_latent_attention(f, c);
    parse_deepseek_experts(f, c);
  }
  if (glm45) {
    // Glm4MoeAttention: biases on q, k and v with attention_bias, none on o; RMSNorms of each query and key head with
    // use_qk_norm; RoPE on the first partial_rotary_factor (0.5) of each head, rotate_half's halves (GPT-NeoX's).
    // Its experts and dense first layers are DeepSeek-V3's. (The releases' multi-token prediction layers, past
    // num_hidden_layers, are not read, as transformers does not read them.)
    c.attention_bias = f.boolean("attention_bias", false);
    c.qk_norm = f.boolean("use_qk_norm", false);
    parse_deepseek_experts(f, c);
  }
  if (smollm3) parse_smollm3_layers(f, c);
  if (gpt_oss) {
    // GptOssAttention: biases on q, k, v and o (attention_bias, true by default), a sink logit per head; every other
    // layer from the first with a window (128) unless layer_types says which; GptOssRMSNorm multiplies by its weight
    // in float32 before rounding.
    c.attention_bias = f.boolean("attention_bias", true);
    c.output_bias = c.attention_bias;
    c.attention_sinks = true;
    c.norms_scale_in_float32 = true;
    c.sliding_layers = sliding_layers_of(f, c.num_layers, [](int64_t i) { return i % 2 == 0; });
    c.sliding_window = !any_of(c.sliding_layers)           ? 0
                       : !f.json().contains("sliding_window") ? 128
                                                              : window_field(f);
    if (c.sliding_window == 0) c.sliding_layers.clear();
    parse_gpt_oss_experts(f, c);
  }
  if (apertus) c.qk_norm = true;  // ApertusAttention: q_norm and k_norm on each head, as Qwen3's
  if (exaone) parse_exaone4_layers(f, c);
  if (ministral3) parse_llama4_query_scale(f, c);
  if (qwen35) parse_qwen3_5(f, c);
  if (granite4) parse_granite4(f, c);
  if (seed) {
    // SeedOssAttention: biases on q, k and v with attention_bias (true by default), on o with attention_out_bias;
    // SeedOssMLP: on all three with mlp_bias.
    c.attention_bias = f.boolean("attention_bias", true);
    c.output_bias = f.boolean("attention_out_bias", false);
    c.mlp_bias = f.boolean("mlp_bias", false);
  }
  if (c.architecture == Architecture::olmo3) {
    // Olmo3Config: three sliding-window layers (4096) to one full-attention layer unless layer_types says which,
    // each kind with its RoPE (theta 500000 by default; YaRN on the full-attention layers of the released models).
    c.sliding_layers = sliding_layers_of(f, c.num_layers, [](int64_t i) { return (i + 1) % 4 != 0; });
    c.sliding_window = any_of(c.sliding_layers) ? window_field(f) : 0;
    parse_layered_rope(f, c, {500000.0, 500000.0, nullptr});
  }
  if (qwen) {
    if (c.architecture == Architecture::qwen2) {
      // Qwen2Attention: q/k/v always have biases, o_proj never; the MLP never.
      c.attention_bias = true;
    } else {
      // Qwen3Attention: all four projections have biases when attention_bias (the released models: none); the MLP
      // never; q_norm and k_norm always.
      c.attention_bias = f.boolean("attention_bias", false);
      c.output_bias = c.attention_bias;
      c.qk_norm = true;
    }
    // Qwen2Config / Qwen3Config: the window only with use_sliding_window (else it is null, and layers named sliding
    // attend to everything), on the layers from max_window_layers on unless layer_types says which.
    const int64_t first_sliding = f.integer("max_window_layers", 28);
    std::vector<bool> sliding =
        sliding_layers_of(f, c.num_layers, [first_sliding](int64_t i) { return i >= first_sliding; });
    if (f.boolean("use_sliding_window", false) && any_of(sliding)) {
      c.sliding_window = window_field(f);
      if (c.sliding_window > 0) c.sliding_layers = std::move(sliding);
    }
  }

  if (!c.mla.defined())  // (latent attention's: its rope_dim)
    c.rotary_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * c.rope.partial_rotary_factor);
  if (!(c.rope.partial_rotary_factor > 0.0) || c.rope.partial_rotary_factor > 1.0 || c.rotary_dim <= 0 ||
      c.rotary_dim % 2 != 0)
    f.fail("partial_rotary_factor", fmt::format("is {}, which rotates {} of head_dim={} dimensions (must be an even "
                                                "number from 2 to head_dim)",
                                                c.rope.partial_rotary_factor, c.rotary_dim, c.head_dim));
  for (const RopeConfig* r : {&c.rope, c.local_rope ? &*c.local_rope : nullptr}) {
    if (r == nullptr) continue;
    if (r->partial_rotary_factor != 1.0 && !phi && !glm && !glm45 && !qwen35)  // (only these rotate part of a head)
      f.fail("partial_rotary_factor", fmt::format("is {}; only 1 is supported", r->partial_rotary_factor));
    if (r->type == "longrope" && (static_cast<int64_t>(r->short_factor.size()) * 2 != c.rotary_dim ||
                                  static_cast<int64_t>(r->long_factor.size()) * 2 != c.rotary_dim))
      f.fail(rope_dict_field(f),
             fmt::format("has a short_factor of {} and a long_factor of {} numbers; the RoPE rotates {} dimensions "
                         "of each head, so they must hold {}",
                         r->short_factor.size(), r->long_factor.size(), c.rotary_dim, c.rotary_dim / 2));
  }
  // 5.x writes `dtype`, 4.x `torch_dtype`.
  c.dtype = f.has("dtype") ? f.string("dtype", "") : f.string("torch_dtype", "");
  return c;
}

// Gemma3TextConfig's defaults for the sizes, which the multimodal releases' text_config mostly leaves out (the 4B's
// gives hidden_size, intermediate_size and num_hidden_layers; the heads, head_dim and vocab_size are the defaults).
const std::pair<const char*, int64_t> kGemma3TextSizes[] = {
    {"vocab_size", 262208},        {"hidden_size", 2304},      {"intermediate_size", 9216},
    {"num_hidden_layers", 26},     {"num_attention_heads", 8}, {"num_key_value_heads", 4},
    {"head_dim", 256},
};

// A vision-language checkpoint's language model, which its text_config describes (the vision tower's config is not
// read: abmll feeds the model text only); tie_word_embeddings is the top level's, by which the multimodal model ties
// its lm_head (true by default but in Qwen3.5's); the dtype the text config's, else the top level's.
// - Gemma3ForConditionalGeneration (the Gemma-3 4B, 12B and 27B releases): a Gemma3TextConfig, completed with that
//   class's defaults.
// - Mistral3ForConditionalGeneration (Ministral-3 3B to 14B, Mistral-Small-3.1 and -3.2, Magistral-Small): a
//   Ministral3Config or a MistralConfig (the default type), each with its class's defaults.
// - Qwen3_5ForConditionalGeneration and Qwen3_5MoeForConditionalGeneration (the Qwen3.5 releases): a
//   Qwen3_5TextConfig, a Qwen3_5MoeTextConfig.
ModelConfig parse_multimodal(const Fields& top, const ArchitectureName& name) {
  const bool gemma3 = name.architecture == Architecture::gemma3;
  const bool qwen35_moe = name.architecture == Architecture::qwen3_5_moe;
  const bool qwen35 = name.architecture == Architecture::qwen3_5 || qwen35_moe;
  const char* const model = gemma3 ? "Gemma-3" : qwen35_moe ? "Qwen3.5-MoE" : qwen35 ? "Qwen3.5" : "Mistral-3";
  if (!top.has("text_config") || !top.json().at("text_config").is_object())
    top.fail("text_config", fmt::format("must be an object (the language model's config) in a multimodal {} config",
                                        model));
  nlohmann::json text = top.json().at("text_config");
  const Fields given(text, fmt::format("{}: field 'text_config'", top.source()));
  const char* const text_type = gemma3 ? "gemma3_text" : qwen35_moe ? "qwen3_5_moe_text" : "qwen3_5_text";
  const std::string type = given.string("model_type", gemma3 || qwen35 ? text_type : "mistral");
  Architecture architecture = name.architecture;
  if (gemma3 || qwen35) {
    const char* const expected = text_type;
    if (type != expected)
      given.fail("model_type", fmt::format("is \"{}\"; a multimodal {}'s language model is \"{}\"", type, model,
                                           expected));
    if (gemma3)
      for (const auto& [key, value] : kGemma3TextSizes)
        if (!text.contains(key) || text.at(key).is_null()) text[key] = value;
  } else if (type == "ministral3" || type == "mistral") {
    architecture = type == "mistral" ? Architecture::mistral : Architecture::ministral3;
  } else {
    given.fail("model_type", fmt::format("is \"{}\"; a multimodal Mistral-3's language model is \"ministral3\" or "
                                         "\"mistral\"",
                                         type));
  }
  // (Qwen3_5Config does not tie by default; Gemma3Config and Mistral3Config do.)
  text["tie_word_embeddings"] = top.boolean("tie_word_embeddings", !qwen35);
  if (!given.has("dtype") && !given.has("torch_dtype")) {
    const char* key = top.has("dtype") ? "dtype" : "torch_dtype";
    if (top.has(key)) text[key] = top.json().at(key);
  }
  ModelConfig c = parse_language_model(Fields(text, given.source()), architecture);
  c.multimodal = true;
  return c;
}

// FineGrainedFP8Config's fields: the weights' format (`fmt`, E4M3 only) and `weight_block_size`, [rows, columns]
// of one scale's block, or null for one scale per tensor ({0, 0}). (`activation_scheme` concerns FP8 activations,
// which a dequantized model does not compute; `modules_to_not_convert` is read from the tensors' dtypes.)
std::array<int64_t, 2> parse_fp8_blocks(const Fields& q) {
  if (q.has("fmt") && q.string("fmt", "") != "e4m3")
    q.fail("fmt", fmt::format("is {}; FP8 weights are read in E4M3 only", q.value_text("fmt")));
  if (!q.has("weight_block_size")) return {0, 0};
  const auto& size = q.json().at("weight_block_size");
  if (!size.is_array() || size.size() != 2 || !size[0].is_number_integer() || !size[1].is_number_integer() ||
      size[0].get<int64_t>() <= 0 || size[1].get<int64_t>() <= 0 || size[0].get<int64_t>() > kLargestWidth ||
      size[1].get<int64_t>() > kLargestWidth)
    q.fail("weight_block_size", fmt::format("must be [rows, columns] of positive whole numbers (up to 2^32), or "
                                            "null, not {}",
                                            size.dump()));
  return {size[0].get<int64_t>(), size[1].get<int64_t>()};
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a JSON object", source));
  const Fields f(j, source);
  const ArchitectureName& architecture = parse_architecture(f);
  // A quantized checkpoint's weights need its scales to mean anything: refused rather than read as plain weights,
  // but for transformers' fine-grained FP8 and gpt-oss's MXFP4 experts, which are dequantized when loaded.
  bool mxfp4 = false;
  std::optional<std::array<int64_t, 2>> fp8_block;
  if (f.has("quantization_config")) {
    const auto& q = j.at("quantization_config");
    const std::string method = q.is_object() && q.contains("quant_method") ? q.at("quant_method").dump() : "?";
    mxfp4 = architecture.architecture == Architecture::gpt_oss && method == "\"mxfp4\"";
    if (method == "\"fp8\"") fp8_block = parse_fp8_blocks(Fields(q, f.source() + ": field 'quantization_config'"));
    if (!mxfp4 && !fp8_block)
      f.fail("quantization_config", fmt::format("is present (quant_method {}): quantized checkpoints are not "
                                                "supported (but transformers' fine-grained \"fp8\" and gpt-oss's "
                                                "MXFP4 experts); use the model's bfloat16, float16 or float32 weights",
                                                method));
  }
  ModelConfig c =
      architecture.multimodal ? parse_multimodal(f, architecture) : parse_language_model(f, architecture.architecture);
  if (mxfp4) {
    if (c.hidden_size % 32 != 0 || c.moe.expert_size % 32 != 0)
      f.fail("quantization_config", fmt::format("says MXFP4, whose blocks of 32 values need hidden_size ({}) and "
                                                "intermediate_size ({}) to be multiples of 32",
                                                c.hidden_size, c.moe.expert_size));
    c.moe.mxfp4_experts = true;
  }
  if (fp8_block) {
    c.fp8_weights = true;
    c.fp8_block = *fp8_block;
  }
  return c;
}

namespace {

// `text` with the bare words Python's json module writes for non-finite floats (Infinity, -Infinity, NaN; not JSON)
// spelt as transformers 5 spells them ({"__float__": "Infinity"}); nullopt when it holds none outside strings.
std::optional<std::string> python_floats_spelt(std::string_view text) {
  static constexpr std::pair<std::string_view, std::string_view> kWords[] = {
      {"-Infinity", R"({"__float__": "-Infinity"})"},
      {"Infinity", R"({"__float__": "Infinity"})"},
      {"NaN", R"({"__float__": "NaN"})"}};
  std::string out;
  out.reserve(text.size());
  bool in_string = false, escaped = false, changed = false;
  for (std::size_t i = 0; i < text.size();) {
    const char ch = text[i];
    if (in_string) {
      in_string = escaped || ch != '"';
      escaped = !escaped && ch == '\\';
      out += ch;
      ++i;
      continue;
    }
    in_string = ch == '"';
    const auto* word = std::find_if(std::begin(kWords), std::end(kWords),
                                    [&](const auto& w) { return text.substr(i).starts_with(w.first); });
    if (word == std::end(kWords)) {
      out += ch;
      ++i;
      continue;
    }
    out += word->second;
    i += word->first.size();
    changed = true;
  }
  if (!changed) return std::nullopt;
  return out;
}

}  // namespace

nlohmann::json parse_config_json(std::string_view text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // (A syntax error elsewhere is reported as found in the file as it is.)
    if (const std::optional<std::string> spelt = python_floats_spelt(text)) {
      nlohmann::json j = nlohmann::json::parse(*spelt, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) return j;
    }
    throw InputError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
}

ModelConfig load_model_config(const fs::path& path) {
  const fs::path file = fs::is_directory(path) ? path / "config.json" : path;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open the file", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_model_config(parse_config_json(text.str(), file.string()), file.string());
}

}  // namespace abmll::model
