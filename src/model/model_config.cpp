// Parsing config.json (see model_config.h). Defaults follow transformers' LlamaConfig / Qwen2Config / Qwen3Config
// for the fields
// real checkpoints sometimes leave out; the sizes themselves are required.
#include "model/model_config.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

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

Architecture parse_architecture(const Fields& f) {
  std::optional<Architecture> from_type, from_list;
  if (f.has("model_type")) {
    const std::string type = f.string("model_type", "");
    if (type == "llama") from_type = Architecture::llama;
    else if (type == "qwen2") from_type = Architecture::qwen2;
    else if (type == "qwen3") from_type = Architecture::qwen3;
    else if (type == "mistral") from_type = Architecture::mistral;
    else
      f.fail("model_type",
             fmt::format("is \"{}\"; supported: \"llama\", \"qwen2\", \"qwen3\", \"mistral\"", type));
  }
  if (f.has("architectures")) {
    const auto& list = f.json().at("architectures");
    if (!list.is_array() || list.size() != 1 || !list[0].is_string())
      f.fail("architectures", fmt::format("must list exactly one architecture, not {}", list.dump()));
    const std::string name = list[0].get<std::string>();
    if (name == "LlamaForCausalLM") from_list = Architecture::llama;
    else if (name == "Qwen2ForCausalLM") from_list = Architecture::qwen2;
    else if (name == "Qwen3ForCausalLM") from_list = Architecture::qwen3;
    else if (name == "MistralForCausalLM") from_list = Architecture::mistral;
    else
      f.fail("architectures", fmt::format("is [\"{}\"]; supported: \"LlamaForCausalLM\", \"Qwen2ForCausalLM\", "
                                          "\"Qwen3ForCausalLM\", \"MistralForCausalLM\"",
                                          name));
  }
  if (from_type && from_list && *from_type != *from_list)
    f.fail("architectures", fmt::format("is {} but model_type is {}", f.value_text("architectures"),
                                        f.value_text("model_type")));
  if (from_type) return *from_type;
  if (from_list) return *from_list;
  f.fail("model_type", "is missing (and so is architectures)");
}

// transformers' rules (modeling_rope_utils.py, RotaryEmbeddingConfigMixin): the parameters are `rope_scaling` when
// given and not null (4.x), else `rope_parameters` (5.x); rope_theta is taken from that dict, else from the top
// level, else 10000; the type from `rope_type`, else `type`, else "default"; llama3's
// original_max_position_embeddings defaults to max_position_embeddings.
RopeConfig parse_rope(const Fields& top, int64_t max_position_embeddings) {
  std::string field = "rope_scaling";
  if (!top.has(field)) field = "rope_parameters";
  nlohmann::json params = top.has(field) ? top.json().at(field) : nlohmann::json::object();
  if (!params.is_object()) top.fail(field, fmt::format("must be an object or null, not {}", params.dump()));
  const Fields f(params, fmt::format("{}: field '{}'", top.source(), field));
  // Per-layer-type RoPE (nested dicts) and partial rotary embeddings are other models' features.
  for (const auto& [key, value] : params.items())
    if (value.is_object()) f.fail(key, "is a nested RoPE dict (per-layer RoPE is not supported)");
  if (f.has("partial_rotary_factor") && f.number("partial_rotary_factor") != 1.0)
    f.fail("partial_rotary_factor", fmt::format("is {}; only 1 is supported", f.value_text("partial_rotary_factor")));

  RopeConfig rope;
  rope.theta = f.has("rope_theta") ? f.number("rope_theta") : top.number("rope_theta", 10000.0);
  if (!(rope.theta > 1.0)) f.fail("rope_theta", fmt::format("must be greater than 1, not {}", rope.theta));
  rope.type = f.has("rope_type") ? f.string("rope_type", "") : f.string("type", "default");
  if (rope.type == "default") return rope;
  if (rope.type != "llama3")
    f.fail(f.has("rope_type") ? "rope_type" : "type",
           fmt::format("is \"{}\"; supported: \"default\", \"llama3\"", rope.type));
  rope.factor = f.number("factor");
  rope.low_freq_factor = f.number("low_freq_factor");
  rope.high_freq_factor = f.number("high_freq_factor");
  rope.original_max_position_embeddings = f.integer("original_max_position_embeddings", max_position_embeddings);
  if (!(rope.factor >= 1.0)) f.fail("factor", fmt::format("must be at least 1, not {}", rope.factor));
  if (!(rope.low_freq_factor > 0.0) || !(rope.high_freq_factor > rope.low_freq_factor))
    f.fail("high_freq_factor", fmt::format("must exceed low_freq_factor > 0 (they are {} and {})",
                                           rope.high_freq_factor, rope.low_freq_factor));
  if (rope.original_max_position_embeddings <= 0)
    f.fail("original_max_position_embeddings",
           fmt::format("must be positive, not {}", rope.original_max_position_embeddings));
  return rope;
}

void require_positive(const Fields& f, const std::string& field, int64_t value) {
  if (value <= 0) f.fail(field, fmt::format("must be positive, not {}", value));
}

}  // namespace

std::string to_string(Architecture arch) {
  switch (arch) {
    case Architecture::llama: return "llama";
    case Architecture::qwen2: return "qwen2";
    case Architecture::qwen3: return "qwen3";
    case Architecture::mistral: return "mistral";
  }
  return "?";
}

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a JSON object", source));
  const Fields f(j, source);
  ModelConfig c;
  c.architecture = parse_architecture(f);
  const bool llama = c.architecture == Architecture::llama || c.architecture == Architecture::mistral;

  c.hidden_size = f.integer("hidden_size");
  c.intermediate_size = f.integer("intermediate_size");
  c.num_layers = f.integer("num_hidden_layers");
  c.num_heads = f.integer("num_attention_heads");
  c.vocab_size = f.integer("vocab_size");
  require_positive(f, "hidden_size", c.hidden_size);
  require_positive(f, "intermediate_size", c.intermediate_size);
  require_positive(f, "num_hidden_layers", c.num_layers);
  require_positive(f, "num_attention_heads", c.num_heads);
  require_positive(f, "vocab_size", c.vocab_size);
  c.num_kv_heads = f.integer("num_key_value_heads", c.num_heads);
  require_positive(f, "num_key_value_heads", c.num_kv_heads);
  if (c.num_heads % c.num_kv_heads != 0)
    f.fail("num_key_value_heads", fmt::format("is {}, which does not divide num_attention_heads={}",
                                              c.num_kv_heads, c.num_heads));
  if (f.has("head_dim") || c.architecture == Architecture::qwen3) {
    c.head_dim = f.integer("head_dim", 128);  // Qwen3Config's default, whatever D / H is
    require_positive(f, "head_dim", c.head_dim);
  } else {
    if (c.hidden_size % c.num_heads != 0)
      f.fail("num_attention_heads", fmt::format("is {}, which does not divide hidden_size={} (and head_dim is not "
                                                "given)", c.num_heads, c.hidden_size));
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) f.fail("head_dim", fmt::format("must be even for RoPE, not {}", c.head_dim));

  c.max_position_embeddings = f.integer("max_position_embeddings", llama ? 2048 : 32768);
  require_positive(f, "max_position_embeddings", c.max_position_embeddings);
  c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
  if (!(c.rms_norm_eps > 0.0)) f.fail("rms_norm_eps", fmt::format("must be positive, not {}", c.rms_norm_eps));
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.rope = parse_rope(f, c.max_position_embeddings);

  const std::string act = f.string("hidden_act", "silu");
  if (act != "silu") f.fail("hidden_act", fmt::format("is \"{}\"; only \"silu\" is supported", act));

  if (c.architecture == Architecture::mistral && f.has("sliding_window") && !j.at("sliding_window").is_null()) {
    c.sliding_window = f.integer("sliding_window", 0);
    require_positive(f, "sliding_window", c.sliding_window);
  }
  if (llama) {
    // LlamaAttention gives all four projections a bias when attention_bias; LlamaMLP all three when mlp_bias
    // (MistralAttention and MistralMLP have none, and their configs carry neither flag).
    c.attention_bias = f.boolean("attention_bias", false);
    c.output_bias = c.attention_bias;
    c.mlp_bias = f.boolean("mlp_bias", false);
  } else {
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
    if (f.boolean("use_sliding_window", false))
      f.fail("use_sliding_window", "is true; sliding-window attention is not supported");
    if (f.has("layer_types")) {
      const auto& types = j.at("layer_types");
      if (!types.is_array()) f.fail("layer_types", fmt::format("must be a list, not {}", types.dump()));
      for (const auto& t : types)
        if (t != "full_attention")
          f.fail("layer_types", fmt::format("contains {}; only \"full_attention\" is supported", t.dump()));
    }
  }

  // 5.x writes `dtype`, 4.x `torch_dtype`.
  c.dtype = f.has("dtype") ? f.string("dtype", "") : f.string("torch_dtype", "");
  return c;
}

ModelConfig load_model_config(const fs::path& path) {
  const fs::path file = fs::is_directory(path) ? path / "config.json" : path;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open the file", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON: {}", file.string(), e.what()));
  }
  return parse_model_config(j, file.string());
}

}  // namespace abmll::model
