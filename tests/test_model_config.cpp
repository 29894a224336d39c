// config.json parsing (both the transformers 4.x and 5.x spellings, and the refusals) and the name table's checks
// on a checkpoint's tensors (missing tensors and shape mismatches, with their messages).
#include <catch2/catch.hpp>

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/zeros.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "io/safetensors_writer.h"
#include "io/tensor_store.h"
#include "model/attention.h"
#include "model/decoder_weights.h"
#include "model/fp8.h"
#include "model/model_config.h"
#include "model/lora.h"
#include "model/lora_settings.h"
#include "model/weight_names.h"
#include "test_support.h"
#include "util/error.h"

using namespace abmll::model;
using abmll::test::ScratchDir;
using nlohmann::json;

namespace {

// What transformers 5.23 writes for a small Llama-3.1 (save_pretrained): rope_theta inside rope_parameters.
json llama31_config() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": false, "dtype": "float32",
    "head_dim": 16, "hidden_act": "silu", "hidden_size": 64, "intermediate_size": 128,
    "max_position_embeddings": 2048, "mlp_bias": false, "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-05, "tie_word_embeddings": false, "vocab_size": 256,
    "rope_parameters": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                        "original_max_position_embeddings": 64, "rope_theta": 500000.0, "rope_type": "llama3"}
  })");
}

// Gemma-7B's config.json (its sizes shrunk): the legacy "gelu", no head_dim (GemmaConfig's default is 256).
json gemma_config() {
  return json::parse(R"({
    "architectures": ["GemmaForCausalLM"], "model_type": "gemma", "hidden_act": "gelu", "hidden_size": 64,
    "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 4,
    "vocab_size": 300, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "torch_dtype": "bfloat16"
  })");
}

// Gemma-2-9B's config.json (its sizes shrunk), as released: no layer_types.
json gemma2_config() {
  return json::parse(R"({
    "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "attn_logit_softcapping": 50.0,
    "final_logit_softcapping": 30.0, "head_dim": 16, "hidden_act": "gelu_pytorch_tanh",
    "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 64, "intermediate_size": 96,
    "max_position_embeddings": 8192, "num_attention_heads": 4, "num_hidden_layers": 3, "num_key_value_heads": 2,
    "query_pre_attn_scalar": 144, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": 4096,
    "vocab_size": 300, "torch_dtype": "float32"
  })");
}

// Gemma-3-1B's text config.json in the 4.x spelling (its sizes shrunk): rope_theta and rope_local_base_freq at the top
// level, sliding_window_pattern, no layer_types.
json gemma3_config() {
  return json::parse(R"({
    "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "attn_logit_softcapping": null,
    "final_logit_softcapping": null, "head_dim": 16, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 64,
    "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 7, "num_key_value_heads": 1,
    "query_pre_attn_scalar": 16, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0}, "rope_theta": 1000000.0, "sliding_window": 512,
    "sliding_window_pattern": 6, "vocab_size": 300
  })");
}

json qwen2_config() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64, "intermediate_size": 96,
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "vocab_size": 300,
    "layer_types": ["full_attention", "full_attention"], "use_sliding_window": false, "sliding_window": null,
    "max_window_layers": 28, "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
    "tie_word_embeddings": true, "torch_dtype": "bfloat16"
  })");
}

// What transformers 5.23 writes for a small Qwen3 (Qwen3-0.6B's layout: head_dim 128, not hidden / heads).
json qwen3_config() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": false, "head_dim": 128,
    "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "vocab_size": 300, "layer_types": ["full_attention", "full_attention"],
    "use_sliding_window": false, "sliding_window": null, "max_window_layers": 28,
    "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}, "tie_word_embeddings": true,
    "dtype": "bfloat16"
  })");
}

bool has_spec(const std::vector<WeightSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.name == name) return true;
  return false;
}

void require_input_error(const json& j, const std::vector<std::string>& fragments) {
  try {
    parse_model_config(j, "dir/config.json");
    FAIL("no error for " << j.dump());
  } catch (const abmll::InputError& e) {
    INFO("message: " << e.what());
    for (const auto& f : fragments) CHECK(std::string(e.what()).find(f) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("model config: transformers 5.x Llama-3.1 (rope_parameters)", "[model]") {
  const ModelConfig c = parse_model_config(llama31_config());
  CHECK(c.architecture == Architecture::llama);
  CHECK(c.hidden_size == 64);
  CHECK(c.intermediate_size == 128);
  CHECK(c.num_layers == 2);
  CHECK(c.num_heads == 4);
  CHECK(c.num_kv_heads == 2);
  CHECK(c.head_dim == 16);
  CHECK(c.vocab_size == 256);
  CHECK(c.rms_norm_eps == 1e-5);
  CHECK(c.rope.type == "llama3");
  CHECK(c.rope.theta == 500000.0);
  CHECK(c.rope.factor == 8.0);
  CHECK(c.rope.low_freq_factor == 1.0);
  CHECK(c.rope.high_freq_factor == 4.0);
  CHECK(c.rope.original_max_position_embeddings == 64);
  CHECK_FALSE(c.attention_bias);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.dtype == "float32");
}

TEST_CASE("model config: transformers 4.x spelling (rope_scaling, top-level rope_theta, torch_dtype)", "[model]") {
  json j = llama31_config();
  j.erase("rope_parameters");
  j.erase("head_dim");
  j.erase("dtype");
  j["rope_theta"] = 500000.0;
  j["torch_dtype"] = "bfloat16";
  j["rope_scaling"] = {{"type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}};
  const ModelConfig c = parse_model_config(j);
  CHECK(c.head_dim == 16);  // hidden / heads
  CHECK(c.rope.type == "llama3");
  CHECK(c.rope.theta == 500000.0);
  CHECK(c.rope.factor == 32.0);
  CHECK(c.rope.original_max_position_embeddings == 2048);  // defaults to max_position_embeddings
  CHECK(c.dtype == "bfloat16");

  // rope_scaling null and no rope_parameters: default RoPE with the top-level theta, or 10000 without one.
  j["rope_scaling"] = nullptr;
  CHECK(parse_model_config(j).rope.type == "default");
  CHECK(parse_model_config(j).rope.theta == 500000.0);
  j.erase("rope_theta");
  CHECK(parse_model_config(j).rope.theta == 10000.0);
}

TEST_CASE("model config: Qwen2 has q/k/v biases and may tie embeddings", "[model]") {
  const ModelConfig c = parse_model_config(qwen2_config());
  CHECK(c.architecture == Architecture::qwen2);
  CHECK(c.attention_bias);
  CHECK_FALSE(c.output_bias);
  CHECK_FALSE(c.mlp_bias);
  CHECK(c.tie_word_embeddings);
  CHECK(c.rope.theta == 1000000.0);
  CHECK(c.head_dim == 16);
  CHECK(c.dtype == "bfloat16");

  const auto specs = weight_specs(c);
  auto has = [&](const std::string& name) {
    for (const auto& s : specs)
      if (s.name == name) return true;
    return false;
  };
  CHECK(has("model.layers.1.self_attn.k_proj.bias"));
  CHECK_FALSE(has("model.layers.1.self_attn.o_proj.bias"));
  CHECK_FALSE(has("lm_head.weight"));  // tied
  CHECK(specs.size() == 1 + 2 * (2 + 4 + 3 + 3) + 1);
}

TEST_CASE("model config: Qwen3 normalises each query and key head; head_dim defaults to 128", "[model]") {
  json j = qwen3_config();
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::qwen3);
  CHECK(to_string(c.architecture) == "qwen3");
  CHECK(c.qk_norm);
  CHECK(c.head_dim == 128);
  CHECK_FALSE(c.attention_bias);
  CHECK_FALSE(c.output_bias);
  CHECK_FALSE(c.mlp_bias);
  CHECK(c.max_position_embeddings == 32768);
  auto specs = weight_specs(c);
  CHECK(has_spec(specs, "model.layers.1.self_attn.q_norm.weight"));
  CHECK(has_spec(specs, "model.layers.0.self_attn.k_norm.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.q_proj.bias"));
  CHECK(specs.size() == 1 + 2 * (2 + 4 + 2 + 3) + 1);
  for (const auto& s : specs)
    if (s.name == "model.layers.0.self_attn.q_norm.weight") CHECK(s.shape == std::vector<int64_t>{128});
    else if (s.name == "model.layers.0.self_attn.q_proj.weight") CHECK(s.shape == std::vector<int64_t>{512, 64});

  // Qwen3Config's default head_dim is 128 whatever hidden / heads is (here 16).
  j.erase("head_dim");
  CHECK(parse_model_config(j).head_dim == 128);

  // attention_bias gives all four projections a bias (Qwen3Attention), unlike Qwen2's q/k/v only.
  j = qwen3_config();
  j["attention_bias"] = true;
  c = parse_model_config(j);
  specs = weight_specs(c);
  CHECK(has_spec(specs, "model.layers.0.self_attn.v_proj.bias"));
  CHECK(has_spec(specs, "model.layers.0.self_attn.o_proj.bias"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.mlp.up_proj.bias"));

  // Neither Qwen2 nor Llama has the head norms.
  CHECK_FALSE(parse_model_config(qwen2_config()).qk_norm);
  CHECK_FALSE(parse_model_config(llama31_config()).qk_norm);

  // A checkpoint without the head norms is not a Qwen3 one.
  c = parse_model_config(qwen3_config());
  ScratchDir dir;
  abmll::io::NamedTensors tensors;
  for (const auto& s : weight_specs(c))
    if (s.name != "model.layers.1.self_attn.k_norm.weight") tensors.emplace_back(s.name, at::zeros(s.shape));
  abmll::io::write_safetensors(dir / "no-k-norm.safetensors", tensors);
  try {
    load_decoder_weights(abmll::io::TensorStore::open(dir / "no-k-norm.safetensors"), c, {});
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("'model.layers.1.self_attn.k_norm.weight' is missing") != std::string::npos);
    CHECK(m.find("qwen3") != std::string::npos);
  }
}

TEST_CASE("model config: Gemma and Gemma-2, their defaults and their refusals", "[model]") {
  ModelConfig c = parse_model_config(gemma_config(), "dir/config.json");
  CHECK(c.architecture == Architecture::gemma);
  CHECK(c.head_dim == 256);  // not hidden / heads = 16
  CHECK(c.attention_scale == Approx(1.0 / 16));
  CHECK(c.activation == Activation::gelu_tanh);  // the legacy "gelu", as GemmaConfig rewrites it
  CHECK(c.tie_word_embeddings);
  CHECK(c.max_position_embeddings == 8192);
  CHECK((c.scaled_embeddings && c.unit_offset_norms));
  CHECK((!c.output_norms && c.attention_softcap == 0.0 && c.logit_softcap == 0.0 && c.sliding_window == 0));
  CHECK(!has_spec(weight_specs(c), "model.layers.0.pre_feedforward_layernorm.weight"));
  json j = gemma_config();
  j["hidden_act"] = "silu";
  require_input_error(j, {"dir/config.json", "hidden_act", "silu", "gelu_pytorch_tanh"});
  j = gemma_config();
  j["use_bidirectional_attention"] = true;
  require_input_error(j, {"dir/config.json", "use_bidirectional_attention"});

  c = parse_model_config(gemma2_config(), "dir/config.json");
  CHECK(c.architecture == Architecture::gemma2);
  CHECK(c.attention_scale == Approx(1.0 / 12));  // query_pre_attn_scalar^-1/2, not head_dim^-1/2
  CHECK((c.attention_softcap == 50.0 && c.logit_softcap == 30.0));
  CHECK(c.sliding_window == 4096);  // layers 0 and 2 slide
  CHECK((c.output_norms && c.unit_offset_norms && c.scaled_embeddings && c.tie_word_embeddings));
  CHECK(c.activation == Activation::gelu_tanh);
  const auto specs = weight_specs(c);
  CHECK(has_spec(specs, "model.layers.2.pre_feedforward_layernorm.weight"));
  CHECK(has_spec(specs, "model.layers.2.post_feedforward_layernorm.weight"));
  CHECK(!has_spec(specs, "lm_head.weight"));
  j = gemma2_config();
  j["hidden_activation"] = "gelu";  // Gemma-2 reads it as the exact GELU
  CHECK(parse_model_config(j, "dir/config.json").activation == Activation::gelu);
  j["hidden_activation"] = "relu";
  require_input_error(j, {"dir/config.json", "hidden_activation", "relu"});
  // Caps: absent gives the defaults, null none; the window only where a layer slides.
  j = gemma2_config();
  j.erase("attn_logit_softcapping");
  j["final_logit_softcapping"] = nullptr;
  j["layer_types"] = {"full_attention", "full_attention", "full_attention"};
  c = parse_model_config(j, "dir/config.json");
  CHECK((c.attention_softcap == 50.0 && c.logit_softcap == 0.0 && c.sliding_window == 0));
  j["final_logit_softcapping"] = -1.0;
  require_input_error(j, {"dir/config.json", "final_logit_softcapping", "positive"});
  j = gemma2_config();
  j["layer_types"] = {"full_attention", "sliding_attention"};
  require_input_error(j, {"dir/config.json", "layer_types", "num_hidden_layers=3"});
  j["layer_types"] = {"full_attention", "chunked_attention", "full_attention"};
  require_input_error(j, {"dir/config.json", "layer_types", "chunked_attention"});
  j = gemma2_config();
  j["query_pre_attn_scalar"] = 0;
  require_input_error(j, {"dir/config.json", "query_pre_attn_scalar", "positive"});
}

TEST_CASE("model config: Gemma-3's two RoPEs, in both spellings, and its sliding layers", "[model]") {
  ModelConfig c = parse_model_config(gemma3_config(), "dir/config.json");
  CHECK(c.architecture == Architecture::gemma3);
  CHECK((c.qk_norm && c.output_norms && c.unit_offset_norms && c.scaled_embeddings && c.tie_word_embeddings));
  CHECK((c.attention_softcap == 0.0 && c.logit_softcap == 0.0));
  CHECK(c.sliding_layers == std::vector<bool>{true, true, true, true, true, false, true});  // every 6th is full
  CHECK(c.sliding_window == 512);
  CHECK(c.max_position_embeddings == 131072);
  CHECK((c.rope.type == "linear" && c.rope.factor == 8.0 && c.rope.theta == 1e6));
  REQUIRE(c.local_rope.has_value());
  CHECK((c.local_rope->type == "default" && c.local_rope->theta == 1e4));
  CHECK(has_spec(weight_specs(c), "model.layers.6.self_attn.k_norm.weight"));

  // 5.x's spelling: one dict per layer type; a theta missing from one is the top level's, else the default.
  json j = gemma3_config();
  for (const char* key : {"rope_scaling", "rope_theta", "rope_local_base_freq"}) j.erase(key);
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}}},
                          {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 5000.0}}}};
  c = parse_model_config(j, "dir/config.json");
  CHECK((c.rope.type == "linear" && c.rope.factor == 8.0 && c.rope.theta == 1e6));
  CHECK((c.local_rope->type == "default" && c.local_rope->theta == 5000.0));
  j["rope_parameters"]["chunked_attention"] = json::object();
  require_input_error(j, {"dir/config.json", "rope_parameters", "chunked_attention", "not a layer type"});
  j["rope_parameters"].erase("chunked_attention");
  j["rope_parameters"]["full_attention"]["rope_type"] = "dynamic";
  require_input_error(j, {"dir/config.json", "rope_parameters.full_attention", "dynamic"});
  j["rope_parameters"]["full_attention"] = {{"rope_type", "linear"}, {"factor", 0.5}};
  require_input_error(j, {"dir/config.json", "factor", "at least 1"});

  j = gemma3_config();
  j["layer_types"] = {"full_attention", "full_attention", "full_attention", "full_attention", "full_attention",
                      "full_attention", "full_attention"};
  c = parse_model_config(j, "dir/config.json");
  CHECK(c.sliding_window == 0);
  j = gemma3_config();
  j["sliding_window_pattern"] = 0;
  require_input_error(j, {"dir/config.json", "sliding_window_pattern", "positive"});
  j = gemma3_config();
  j["rope_local_base_freq"] = 1;
  require_input_error(j, {"dir/config.json", "rope_local_base_freq"});
}

TEST_CASE("model config: YaRN's fields and their defaults, as _compute_yarn_parameters reads them", "[model]") {
  json j = qwen2_config();
  j["max_position_embeddings"] = 131072;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};  // Qwen2.5's
  RopeConfig r = parse_model_config(j).rope;
  CHECK((r.type == "yarn" && r.factor == 4.0 && r.original_max_position_embeddings == 32768));
  CHECK(r.attention_factor == Approx(0.1 * std::log(4.0) + 1.0).epsilon(1e-15));
  CHECK((r.beta_fast == 32.0 && r.beta_slow == 1.0 && r.truncate));
  // The factor from the lengths; the original length from max_position_embeddings; betas of 0 read as absent.
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"original_max_position_embeddings", 16384}, {"beta_fast", 0},
                       {"beta_slow", 2}, {"truncate", false}};
  r = parse_model_config(j).rope;
  CHECK((r.factor == 8.0 && r.beta_fast == 32.0 && r.beta_slow == 2.0 && !r.truncate));
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}};
  CHECK(parse_model_config(j).rope.original_max_position_embeddings == 131072);
  // DeepSeek's form: mscale over mscale_all_dim; or given outright.
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 40.0}, {"mscale", 1.0}, {"mscale_all_dim", 0.5}};
  CHECK(parse_model_config(j).rope.attention_factor ==
        Approx((0.1 * std::log(40.0) + 1.0) / (0.05 * std::log(40.0) + 1.0)).epsilon(1e-15));
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 40.0}, {"attention_factor", 1.5}, {"mscale", 1.0}};
  CHECK(parse_model_config(j).rope.attention_factor == 1.5);

  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 0.5}};
  require_input_error(j, {"dir/config.json", "rope_scaling", "factor", "at least 1"});
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}, {"attention_factor", -1.0}};
  require_input_error(j, {"dir/config.json", "attention_factor", "positive"});
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}, {"original_max_position_embeddings", 0}};
  require_input_error(j, {"dir/config.json", "original_max_position_embeddings", "positive"});
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}, {"beta_slow", -1}};
  require_input_error(j, {"dir/config.json", "beta_fast", "beta_slow"});
}

// Olmo-3-1025-7B's config.json as transformers 4.57 wrote it, its sizes shrunk: rope_theta and a YaRN rope_scaling
// at the top level, which Olmo3Config gives the full-attention layers only.
json olmo3_config() {
  return json::parse(R"({
    "architectures": ["Olmo3ForCausalLM"], "attention_bias": false, "hidden_act": "silu", "hidden_size": 64,
    "intermediate_size": 96, "max_position_embeddings": 65536, "model_type": "olmo3", "num_attention_heads": 4,
    "num_hidden_layers": 8, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
    "rope_scaling": {"attention_factor": 1.2079441541679836, "beta_fast": 32, "beta_slow": 1, "factor": 8.0,
                     "original_max_position_embeddings": 8192, "rope_type": "yarn"},
    "rope_theta": 500000, "sliding_window": 4096, "tie_word_embeddings": false, "vocab_size": 300
  })");
}

TEST_CASE("model config: OLMo-3, OLMo-2's layers with sliding windows and two RoPEs", "[model]") {
  json j = olmo3_config();
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::olmo3);
  CHECK((!c.input_norms && c.output_norms && c.qk_norm_whole && c.norms_scale_in_float32));
  CHECK(c.sliding_layers == std::vector<bool>{true, true, true, false, true, true, true, false});
  CHECK(c.sliding_window == 4096);
  CHECK((c.rope.type == "yarn" && c.rope.theta == 500000.0 && c.rope.factor == 8.0));
  CHECK(c.rope.attention_factor == 1.2079441541679836);
  REQUIRE(c.local_rope.has_value());
  CHECK((c.local_rope->type == "default" && c.local_rope->theta == 500000.0 && c.local_rope->attention_factor == 1));
  // rope_theta reaches the full-attention layers only (Olmo3Config), the sliding ones keep the default.
  j["rope_theta"] = 10000;
  c = parse_model_config(j);
  CHECK((c.rope.theta == 10000.0 && c.local_rope->theta == 500000.0));
  // 5.x's nested spelling.
  j = olmo3_config();
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e6}}},
                          {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  j["layer_types"] = std::vector<std::string>(8, "full_attention");
  c = parse_model_config(j);
  CHECK((c.rope.theta == 1e6 && c.local_rope->theta == 1e4 && c.sliding_window == 0));
  j["rope_parameters"]["partial"] = json::object();
  require_input_error(j, {"dir/config.json", "rope_parameters", "partial", "layer type"});
}

// Phi-3-mini-4k-instruct's config.json, its sizes shrunk.
json phi3_config() {
  return json::parse(R"({
    "architectures": ["Phi3ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
    "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
    "intermediate_size": 96, "max_position_embeddings": 4096, "model_type": "phi3", "num_attention_heads": 4,
    "num_hidden_layers": 2, "num_key_value_heads": 2, "original_max_position_embeddings": 4096, "pad_token_id": 32000,
    "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0, "sliding_window": 2047,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 300
  })");
}

TEST_CASE("model config: Phi-3's fused projections, and LoRA targets fitted to them", "[model]") {
  json j = phi3_config();
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::phi3);
  CHECK((c.fused_qkv && c.fused_gate_up && !c.attention_bias && !c.mlp_bias && c.sliding_window == 2047));
  CHECK(c.sliding_layers == std::vector<bool>{true, true});
  CHECK((model_projections(c) ==
         std::vector<Projection>{Projection::qkv, Projection::o, Projection::gate_up, Projection::down}));
  const auto specs = weight_specs(c);
  CHECK(specs.size() == 1 + 2 * (2 + 2 + 2) + 2);  // per layer two norms, qkv and o, gate_up and down
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.q_proj.weight"));
  for (const auto& s : specs) {
    if (s.name == "model.layers.1.self_attn.qkv_proj.weight") CHECK(s.shape == std::vector<int64_t>{128, 64});
    if (s.name == "model.layers.1.mlp.gate_up_proj.weight") CHECK(s.shape == std::vector<int64_t>{192, 64});
  }
  // Phi3Config's defaults.
  j.erase("rms_norm_eps");
  j.erase("max_position_embeddings");
  j.erase("sliding_window");
  c = parse_model_config(j);
  CHECK((c.rms_norm_eps == 1e-5 && c.max_position_embeddings == 4096 && c.sliding_window == 0));
  // Phi-4-mini's partial rotation, and its LongRoPE (one factor per rotated pair).
  j["partial_rotary_factor"] = 0.75;
  CHECK(parse_model_config(j).rotary_dim == 12);  // of head_dim 16
  j["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1.0, 1.1, 1.2, 1.3, 1.4, 1.5}},
                       {"long_factor", {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}}};
  j["max_position_embeddings"] = 131072;
  c = parse_model_config(j);
  CHECK((c.rope.type == "longrope" && c.rope.original_max_position_embeddings == 4096));  // Phi3Config's default
  CHECK(c.rope.attention_factor == Approx(std::sqrt(1 + std::log(32.0) / std::log(4096.0))).epsilon(1e-15));
  CHECK(c.rope.long_factor[5] == 6.0);
  j["original_max_position_embeddings"] = 8192;  // the top level's, over the dict's
  j["rope_scaling"]["original_max_position_embeddings"] = 100;
  CHECK(parse_model_config(j).rope.original_max_position_embeddings == 8192);
  j["rope_scaling"]["short_factor"] = {1.0, 1.0};
  require_input_error(j, {"dir/config.json", "rope_scaling", "short_factor of 2", "rotates 12", "must hold 6"});
  j["rope_scaling"]["short_factor"] = {1.0, 1.0, 1.0, 1.0, -1.0, 1.0};
  require_input_error(j, {"dir/config.json", "short_factor", "positive", "-1"});
  j.erase("rope_scaling");
  j["partial_rotary_factor"] = 0.1;  // 1.6 dimensions
  require_input_error(j, {"dir/config.json", "partial_rotary_factor", "0.1", "even"});
  // Other models' attention rotates whole heads.
  json whole = llama31_config();
  whole["rope_parameters"]["partial_rotary_factor"] = 0.5;
  require_input_error(whole, {"dir/config.json", "partial_rotary_factor", "only 1"});

  // LoRA targets: "all-linear" is the model's four; the separate q/k/v or gate/up are not its modules, nor are the
  // fused ones another model's.
  CHECK((fit_lora_targets({"all-linear"}, c, "lora.targets") ==
         std::set<Projection>{Projection::qkv, Projection::o, Projection::gate_up, Projection::down}));
  CHECK((fit_lora_targets({"qkv_proj", "down"}, c, "lora.targets") ==
         std::set<Projection>{Projection::qkv, Projection::down}));
  try {
    fit_lora_targets({"q_proj", "v_proj"}, c, "lora.targets");
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("lora.targets: 'q_proj' is not a module of this phi3 model") != std::string::npos);
    CHECK(m.find("qkv_proj, o_proj, gate_up_proj, down_proj") != std::string::npos);
  }
  const ModelConfig llama = parse_model_config(llama31_config());
  CHECK(fit_lora_targets({"all-linear"}, llama, "x").size() == 7);
  CHECK_THROWS_AS(fit_lora_targets({"gate_up_proj"}, llama, "x"), abmll::InputError);
}

TEST_CASE("model config: Granite's multipliers, and their defaults", "[model]") {
  json j = llama31_config();
  j["architectures"] = {"GraniteForCausalLM"};
  j["model_type"] = "granite";
  j["embedding_multiplier"] = 12.0;  // granite-3.1-8b's
  j["residual_multiplier"] = 0.22;
  j["attention_multiplier"] = 0.0078125;
  j["logits_scaling"] = 16.0;
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::granite);
  CHECK((c.embedding_multiplier == 12.0 && c.residual_multiplier == 0.22 && c.logits_scaling == 16.0));
  CHECK(c.attention_scale == 0.0078125);  // instead of head_dim^-1/2
  for (const char* key : {"embedding_multiplier", "residual_multiplier", "attention_multiplier", "logits_scaling"})
    j.erase(key);
  c = parse_model_config(j);  // GraniteConfig's defaults: all 1, the attention scale too
  CHECK((c.embedding_multiplier == 1.0 && c.residual_multiplier == 1.0 && c.logits_scaling == 1.0 &&
         c.attention_scale == 1.0));
  j["logits_scaling"] = 0;
  require_input_error(j, {"dir/config.json", "logits_scaling", "positive"});
  // Llama's configs carry none of them.
  const ModelConfig llama = parse_model_config(llama31_config());
  CHECK((llama.embedding_multiplier == 1.0 && llama.logits_scaling == 1.0 && llama.attention_scale == 0.25));
}

// OLMo-2-1124-7B's config.json, its sizes shrunk.
json olmo2_config() {
  return json::parse(R"({
    "architectures": ["Olmo2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "eos_token_id": 100257,
    "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96,
    "max_position_embeddings": 4096, "model_type": "olmo2", "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "pad_token_id": 100277, "rms_norm_eps": 1e-06, "rope_scaling": null,
    "rope_theta": 500000, "tie_word_embeddings": false, "torch_dtype": "float32", "vocab_size": 300
  })");
}

TEST_CASE("model config: OLMo-2 norms its blocks' outputs only, and whole queries and keys", "[model]") {
  json j = olmo2_config();
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::olmo2);
  CHECK(to_string(c.architecture) == "olmo2");
  CHECK((!c.input_norms && c.output_norms && c.qk_norm && c.qk_norm_whole && c.norms_scale_in_float32));
  CHECK((!c.unit_offset_norms && !c.scaled_embeddings && !c.tie_word_embeddings && c.rope.theta == 500000.0));
  CHECK((c.rms_norm_eps == 1e-6 && c.max_position_embeddings == 4096 && c.activation == Activation::silu));
  const auto specs = weight_specs(c);
  CHECK_FALSE(has_spec(specs, "model.layers.0.input_layernorm.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.pre_feedforward_layernorm.weight"));
  CHECK(has_spec(specs, "model.layers.1.post_attention_layernorm.weight"));
  CHECK(has_spec(specs, "model.layers.1.post_feedforward_layernorm.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.q_proj.bias"));
  // embeddings, per layer q/k/v/o, two head norms, two output norms, gate/up/down; the final norm and lm_head
  CHECK(specs.size() == 1 + 2 * (4 + 2 + 2 + 3) + 2);
  for (const auto& s : specs) {
    if (s.name == "model.layers.0.self_attn.q_norm.weight") CHECK(s.shape == std::vector<int64_t>{64});  // H*Dh
    if (s.name == "model.layers.0.self_attn.k_norm.weight") CHECK(s.shape == std::vector<int64_t>{32});  // Hkv*Dh
  }
  // Olmo2Config's defaults, and biases on all four projections with attention_bias.
  j.erase("rms_norm_eps");
  j.erase("max_position_embeddings");
  j["attention_bias"] = true;
  c = parse_model_config(j);
  CHECK((c.rms_norm_eps == 1e-5 && c.max_position_embeddings == 2048 && c.attention_bias && c.output_bias));
  CHECK(has_spec(weight_specs(c), "model.layers.0.self_attn.o_proj.bias"));
  CHECK_FALSE(has_spec(weight_specs(c), "model.layers.0.mlp.up_proj.bias"));
  j["hidden_act"] = "gelu";
  require_input_error(j, {"dir/config.json", "hidden_act", "gelu"});
}

// gemma-3-4b-pt's config.json (a multimodal release): the text_config gives only some sizes, the rest are
// Gemma3TextConfig's defaults; the dtype is the top level's.
json gemma3_multimodal_config() {
  return json::parse(R"({
    "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999, "eoi_token_index": 256000,
    "eos_token_id": [1, 106], "image_token_index": 262144, "initializer_range": 0.02, "mm_tokens_per_image": 256,
    "model_type": "gemma3",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                    "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
    "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
                      "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
                      "patch_size": 14, "vision_use_head": false}
  })");
}

TEST_CASE("model config: a multimodal Gemma-3's language model, its text_config completed with the defaults",
          "[model]") {
  const ModelConfig c = parse_model_config(gemma3_multimodal_config(), "dir/config.json");
  CHECK(c.multimodal);
  CHECK(c.architecture == Architecture::gemma3);
  CHECK((c.hidden_size == 2560 && c.intermediate_size == 10240 && c.num_layers == 34));
  CHECK((c.num_heads == 8 && c.num_kv_heads == 4 && c.head_dim == 256 && c.vocab_size == 262208));
  CHECK(c.attention_scale == 1.0 / 16.0);  // query_pre_attn_scalar 256
  CHECK((c.tie_word_embeddings && c.dtype == "bfloat16" && c.sliding_window == 1024));
  CHECK((c.rope.type == "linear" && c.rope.factor == 8.0 && c.rope.theta == 1e6 && c.local_rope->theta == 1e4));
  CHECK(std::count(c.sliding_layers.begin(), c.sliding_layers.end(), false) == 5);  // layers 5, 11, ..., 29
  CHECK(!c.sliding_layers[5]);
  // A text-only config is not multimodal.
  CHECK(!parse_model_config(gemma3_config(), "dir/config.json").multimodal);

  json j = gemma3_multimodal_config();
  j.erase("architectures");
  CHECK(parse_model_config(j, "dir/config.json").multimodal);  // model_type alone
  j["tie_word_embeddings"] = false;  // the top level's decides, as Gemma3ForConditionalGeneration ties by it
  j["text_config"]["tie_word_embeddings"] = true;
  CHECK(!parse_model_config(j, "dir/config.json").tie_word_embeddings);

  j = gemma3_multimodal_config();
  j.erase("text_config");
  require_input_error(j, {"dir/config.json", "text_config", "must be an object"});
  j = gemma3_multimodal_config();
  j["text_config"]["model_type"] = "gemma2";
  require_input_error(j, {"dir/config.json", "text_config", "model_type", "gemma2"});
  j = gemma3_multimodal_config();
  j["text_config"]["hidden_size"] = "wide";
  require_input_error(j, {"dir/config.json", "field 'text_config': field 'hidden_size'", "wide"});
  j = gemma3_multimodal_config();
  j["text_config"]["num_attention_heads"] = 6;  // not a multiple of the default 4 key/value heads
  require_input_error(j, {"dir/config.json", "text_config", "num_key_value_heads"});
  j = gemma3_multimodal_config();
  j["model_type"] = "gemma3_text";  // with Gemma3ForConditionalGeneration
  require_input_error(j, {"dir/config.json", "architectures", "model_type"});
}

TEST_CASE("model config: unsupported or inconsistent configs name the file, the field and the value", "[model]") {
  json j = llama31_config();
  j["architectures"] = {"Gemma3ForConditionalGeneration"};
  require_input_error(j, {"dir/config.json", "architectures", "Gemma3ForConditionalGeneration", "model_type"});
  j["architectures"] = {"LlavaForConditionalGeneration"};
  require_input_error(j, {"dir/config.json", "architectures", "LlavaForConditionalGeneration", "supported"});

  // Qwen's window binds only with use_sliding_window and on the layers from max_window_layers on (Qwen2-7B's 28 of
  // 28 layers: none), or those layer_types names.
  j = qwen2_config();
  j["use_sliding_window"] = true;
  j.erase("sliding_window");
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_window == 0);  // max_window_layers 28
  j["max_window_layers"] = 1;
  j.erase("layer_types");
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_window == 4096);
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_layers == std::vector<bool>{false, true});
  j["sliding_window"] = 64;
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_window == 64);
  j["use_sliding_window"] = false;
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_window == 0);
  j = qwen3_config();
  j["use_sliding_window"] = true;
  j["sliding_window"] = 64;
  j["layer_types"] = {"sliding_attention", "full_attention"};
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_window == 64);
  j["layer_types"] = {"full_attention", "chunked_attention"};
  require_input_error(j, {"dir/config.json", "layer_types", "chunked_attention"});

  // Mistral is read as Llama's math; v0.1's sliding window (4096) is kept, on every layer.
  j = llama31_config();
  j["architectures"] = {"MistralForCausalLM"};
  j["model_type"] = "mistral";
  j["sliding_window"] = 4096;
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_window == 4096);
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_layers == std::vector<bool>{true, true});
  j["sliding_window"] = 0;
  require_input_error(j, {"dir/config.json", "sliding_window", "must be positive"});
  j["sliding_window"] = "wide";
  require_input_error(j, {"dir/config.json", "sliding_window"});
  j["sliding_window"] = nullptr;
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").architecture == abmll::model::Architecture::mistral);
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_window == 0);
  j.erase("sliding_window");  // MistralConfig's default
  CHECK(abmll::model::parse_model_config(j, "dir/config.json").sliding_window == 4096);

  // Ministral: Mistral's layers, sliding where layer_types says (by default everywhere, with MistralConfig's window).
  j["architectures"] = {"MinistralForCausalLM"};
  j["model_type"] = "ministral";
  ModelConfig c = parse_model_config(j, "dir/config.json");
  CHECK((c.architecture == Architecture::ministral && c.sliding_window == 4096));
  CHECK((c.sliding_layers == std::vector<bool>{true, true} && !c.attention_bias && !c.output_bias && !c.mlp_bias));
  j["layer_types"] = {"full_attention", "sliding_attention"};
  j["sliding_window"] = 32768;
  c = parse_model_config(j, "dir/config.json");
  CHECK((c.sliding_window == 32768 && c.sliding_layers == std::vector<bool>{false, true}));
  j["layer_types"] = {"full_attention", "full_attention"};
  CHECK((parse_model_config(j).sliding_window == 0 && parse_model_config(j).sliding_layers.empty()));
  j["layer_types"] = {"sliding_attention", "sliding_attention"};
  j["sliding_window"] = nullptr;
  CHECK((parse_model_config(j).sliding_window == 0 && parse_model_config(j).sliding_layers.empty()));

  j = llama31_config();
  j["rope_parameters"]["rope_type"] = "dynamic";
  require_input_error(j, {"dir/config.json", "rope_parameters", "rope_type", "dynamic", "\"longrope\""});

  j = llama31_config();
  j.erase("rope_parameters");
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  require_input_error(j, {"rope_scaling", "'type'", "dynamic"});

  j = llama31_config();
  j["rope_parameters"].erase("low_freq_factor");
  require_input_error(j, {"low_freq_factor", "missing"});

  j = qwen2_config();
  j["layer_types"] = {"full_attention"};
  require_input_error(j, {"dir/config.json", "layer_types", "num_hidden_layers=2"});

  // Qwen3-Next (linear attention layers, experts) is another architecture.
  j = qwen3_config();
  j["model_type"] = "qwen3_next";
  j["architectures"] = {"Qwen3NextForCausalLM"};
  require_input_error(j, {"dir/config.json", "qwen3_next", "supported: "});

  j = llama31_config();
  j["num_key_value_heads"] = 3;
  require_input_error(j, {"num_key_value_heads", "3", "num_attention_heads=4"});

  j = llama31_config();
  j.erase("head_dim");
  j["num_attention_heads"] = 6;
  j["num_key_value_heads"] = 6;
  require_input_error(j, {"num_attention_heads", "6", "hidden_size=64"});

  j = llama31_config();
  j["hidden_size"] = 0;
  require_input_error(j, {"hidden_size", "positive", "0"});

  j = llama31_config();
  j.erase("vocab_size");
  require_input_error(j, {"vocab_size", "missing"});

  j = llama31_config();
  j["hidden_size"] = "64";
  require_input_error(j, {"hidden_size", "integer", "\"64\""});

  j = llama31_config();
  j["hidden_act"] = "gelu";
  require_input_error(j, {"hidden_act", "gelu"});
}

TEST_CASE("model weights: a missing tensor or a wrong shape names the tensor, both shapes and the config", "[model]") {
  const ModelConfig c = parse_model_config(llama31_config());
  const auto specs = weight_specs(c);
  const WeightSpec& k = specs[3];
  REQUIRE(k.name == "model.layers.0.self_attn.k_proj.weight");
  CHECK(k.shape == std::vector<int64_t>{32, 64});
  try {
    check_weight_shape(k, {64, 64}, c);
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("model.layers.0.self_attn.k_proj.weight") != std::string::npos);
    CHECK(m.find("[64, 64]") != std::string::npos);
    CHECK(m.find("[32, 64]") != std::string::npos);
    CHECK(m.find("different model size") != std::string::npos);
    CHECK(m.find("hidden_size=64") != std::string::npos);
  }

  // Through the loader: a checkpoint whose up_proj is too wide, then one without lm_head.weight.
  ScratchDir dir;
  abmll::io::NamedTensors tensors;
  for (const auto& s : specs) tensors.emplace_back(s.name, at::zeros(s.shape, at::kFloat));
  for (auto& [name, t] : tensors)
    if (name == "model.layers.1.mlp.up_proj.weight") t = at::zeros({129, 64}, at::kFloat);
  abmll::io::write_safetensors(dir / "bad.safetensors", tensors);
  auto store = abmll::io::TensorStore::open(dir / "bad.safetensors");
  try {
    load_decoder_weights(store, c, {});
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("bad.safetensors") != std::string::npos);
    CHECK(m.find("model.layers.1.mlp.up_proj.weight") != std::string::npos);
    CHECK(m.find("[129, 64]") != std::string::npos);
    CHECK(m.find("[128, 64]") != std::string::npos);
  }

  tensors.pop_back();  // lm_head.weight, the last of the table
  for (auto& [name, t] : tensors)
    if (name == "model.layers.1.mlp.up_proj.weight") t = at::zeros({128, 64}, at::kFloat);
  abmll::io::write_safetensors(dir / "untied.safetensors", tensors);
  try {
    load_decoder_weights(abmll::io::TensorStore::open(dir / "untied.safetensors"), c, {});
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("'lm_head.weight' is missing") != std::string::npos);
    CHECK(m.find("tie_word_embeddings=false") != std::string::npos);
  }

  // An FP8 weight (a quantized checkpoint's, whose scales sit in other tensors) is refused, not widened unscaled.
  tensors.emplace_back("lm_head.weight", at::zeros({256, 64}, at::kFloat));
  for (auto& [name, t] : tensors)
    if (name == "model.layers.0.self_attn.k_proj.weight") t = at::zeros({32, 64}, at::kFloat8_e4m3fn);
  abmll::io::write_safetensors(dir / "fp8.safetensors", tensors);
  try {
    load_decoder_weights(abmll::io::TensorStore::open(dir / "fp8.safetensors"), c, {});
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("model.layers.0.self_attn.k_proj.weight") != std::string::npos);
    CHECK(m.find("quantized weights are not supported") != std::string::npos);
  }
  // So is a config that says it is quantized (but in fine-grained FP8).
  json quantized = llama31_config();
  quantized["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}};
  require_input_error(quantized, {"dir/config.json", "quantization_config", "\"gptq\"", "not supported"});
}

TEST_CASE("model weights: a multimodal Gemma-3's language model is read under either naming, its vision tower "
          "left out", "[model]") {
  json j = gemma3_multimodal_config();
  j["text_config"].update(json::parse(R"({"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 300})"));
  const ModelConfig c = parse_model_config(j);
  const auto specs = weight_specs(c);
  ScratchDir dir;
  // The releases' naming (what transformers saves) and the modules' naming.
  for (const std::string prefix : {"language_model.model.", "model.language_model."}) {
    INFO(prefix);
    abmll::io::NamedTensors tensors;
    for (const auto& s : specs)
      tensors.emplace_back(prefix + s.name.substr(6), at::full(s.shape, static_cast<double>(tensors.size())));
    tensors.emplace_back(prefix == "model.language_model." ? "model.vision_tower.x.weight" : "vision_tower.x.weight",
                         at::zeros({3}));
    abmll::io::write_safetensors(dir / "mm.safetensors", tensors);
    const DecoderWeights w = load_decoder_weights(abmll::io::TensorStore::open(dir / "mm.safetensors"), c, {});
    CHECK(w.embed_tokens.flatten()[0].item<double>() == 0.0);
    CHECK(w.layers[1].mlp.down.weight.flatten()[0].item<double>() ==
          static_cast<double>(std::find_if(specs.begin(), specs.end(), [](const WeightSpec& s) {
                                return s.name == "model.layers.1.mlp.down_proj.weight";
                              }) - specs.begin()));
    CHECK(w.lm_head.is_same(w.embed_tokens));

    // A mis-shaped tensor is named as the checkpoint names it.
    for (auto& [name, t] : tensors)
      if (name == prefix + "layers.0.self_attn.q_proj.weight") t = at::zeros({63, 64});
    abmll::io::write_safetensors(dir / "bad.safetensors", tensors);
    try {
      load_decoder_weights(abmll::io::TensorStore::open(dir / "bad.safetensors"), c, {});
      FAIL("no error");
    } catch (const abmll::InputError& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find("'" + prefix + "layers.0.self_attn.q_proj.weight' has shape [63, 64]") !=
            std::string::npos);
    }
  }
  // A text-only checkpoint under a multimodal config.
  abmll::io::NamedTensors text;
  for (const auto& s : specs) text.emplace_back(s.name, at::zeros(s.shape));
  abmll::io::write_safetensors(dir / "text.safetensors", text);
  try {
    load_decoder_weights(abmll::io::TensorStore::open(dir / "text.safetensors"), c, {});
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("text.safetensors") != std::string::npos);
    CHECK(m.find("multimodal model (its language model a gemma3_text)") != std::string::npos);
    CHECK(m.find("'language_model.model.embed_tokens.weight' or 'model.language_model.embed_tokens.weight'") !=
          std::string::npos);
  }
}

namespace {

// Qwen3-30B-A3B's config.json, its sizes shrunk.
json qwen3_moe_config() {
  return json::parse(R"({
    "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "decoder_sparse_step": 1, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64, "intermediate_size": 96,
    "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [], "model_type": "qwen3_moe",
    "moe_intermediate_size": 24, "norm_topk_prob": true, "num_attention_heads": 4, "num_experts": 8,
    "num_experts_per_tok": 2, "num_hidden_layers": 2, "num_key_value_heads": 2, "output_router_logits": false,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
    "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_sliding_window": false,
    "vocab_size": 256
  })");
}

std::vector<int64_t> spec_shape(const std::vector<WeightSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.name == name) return s.shape;
  return {};
}

}  // namespace

TEST_CASE("model config: Qwen3-MoE's experts, their tensors, and LoRA on its attention only", "[model][moe]") {
  const ModelConfig c = parse_model_config(qwen3_moe_config());
  CHECK(c.architecture == Architecture::qwen3_moe);
  CHECK(to_string(c.architecture) == "qwen3_moe");
  const MoeConfig& m = c.moe;
  CHECK((m.num_experts == 8 && m.experts_per_token == 2 && m.expert_size == 24 && m.normalize_weights));
  CHECK((!m.float32_weights && m.shared_expert_size == 0 && m.layers == std::vector<bool>{true, true}));
  CHECK((c.qk_norm && !c.qk_norm_whole && c.head_dim == 16 && !c.attention_bias && c.sliding_window == 0));
  const auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.1.mlp.gate.weight") == std::vector<int64_t>{8, 64});
  CHECK(spec_shape(specs, "model.layers.0.mlp.experts.7.gate_proj.weight") == std::vector<int64_t>{24, 64});
  CHECK(spec_shape(specs, "model.layers.0.mlp.experts.7.down_proj.weight") == std::vector<int64_t>{64, 24});
  CHECK_FALSE(has_spec(specs, "model.layers.0.mlp.gate_proj.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.mlp.experts.8.up_proj.weight"));
  CHECK(specs.size() == 1 + 2 * (1 + 4 + 2 + 1 + 1 + 8 * 3) + 2);  // embeddings, layers, norm and lm_head

  // LoRA: the attention's four projections ("all-linear" included); an MLP projection is refused by name.
  CHECK((fit_lora_targets({"all-linear"}, c, "lora.targets") ==
         std::set<Projection>{Projection::q, Projection::k, Projection::v, Projection::o}));
  try {
    fit_lora_targets({"q_proj", "gate_proj"}, c, "lora.targets");
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("'gate_proj' is not a module of this qwen3_moe model") != std::string::npos);
    CHECK(msg.find("q_proj, k_proj, v_proj, o_proj (the experts' MLPs are not adapted)") != std::string::npos);
  }

  // Qwen3MoeConfig's defaults: head_dim hidden / heads (not Qwen3's 128), 128 experts, 8 per token, width 768, no
  // renormalisation; transformers 5 saves the count as num_local_experts. With use_sliding_window every layer slides.
  json j = qwen3_moe_config();
  for (const char* key : {"head_dim", "num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob"})
    j.erase(key);
  ModelConfig d = parse_model_config(j);
  CHECK((d.head_dim == 16 && d.moe.num_experts == 128 && d.moe.experts_per_token == 8 && d.moe.expert_size == 768));
  CHECK_FALSE(d.moe.normalize_weights);
  j["num_local_experts"] = 16;
  j["use_sliding_window"] = true;
  j["sliding_window"] = 512;
  d = parse_model_config(j);
  CHECK((d.moe.num_experts == 16 && d.sliding_window == 512 && d.sliding_layers == std::vector<bool>{true, true}));
}

TEST_CASE("model config: Mixtral's, Qwen2-MoE's and OLMoE's experts", "[model][moe]") {
  // Mixtral-8x7B's config, shrunk: its experts' w1 (gate), w3 (up) and w2 (down) under block_sparse_moe; the
  // MixtralConfig defaults (8 experts, 2 per token, theta 1e6) when absent; weights renormalised, in float32.
  json mixtral = llama31_config();
  mixtral["architectures"] = {"MixtralForCausalLM"};
  mixtral["model_type"] = "mixtral";
  mixtral.erase("rope_parameters");
  mixtral.erase("head_dim");
  mixtral["sliding_window"] = nullptr;
  ModelConfig c = parse_model_config(mixtral);
  CHECK(c.architecture == Architecture::mixtral);
  CHECK((c.moe.num_experts == 8 && c.moe.experts_per_token == 2 && c.moe.expert_size == 128));
  CHECK((c.moe.normalize_weights && c.moe.float32_weights && c.rope.theta == 1e6 && c.sliding_window == 0));
  auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.0.block_sparse_moe.gate.weight") == std::vector<int64_t>{8, 64});
  CHECK(spec_shape(specs, "model.layers.1.block_sparse_moe.experts.7.w1.weight") == std::vector<int64_t>{128, 64});
  CHECK(spec_shape(specs, "model.layers.1.block_sparse_moe.experts.7.w3.weight") == std::vector<int64_t>{128, 64});
  CHECK(spec_shape(specs, "model.layers.1.block_sparse_moe.experts.7.w2.weight") == std::vector<int64_t>{64, 128});
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.q_proj.bias"));
  mixtral["num_local_experts"] = 4;
  mixtral["sliding_window"] = 4096;  // Mistral's window, on every layer
  c = parse_model_config(mixtral);
  CHECK((c.moe.num_experts == 4 && c.sliding_window == 4096 && c.sliding_layers == std::vector<bool>{true, true}));

  // Qwen1.5-MoE-A2.7B's kind: q/k/v biases (qkv_bias), a shared expert with its gate; decoder_sparse_step and
  // mlp_only_layers leave layers dense (a layer number past the model names none, as in transformers).
  json qwen2 = qwen3_moe_config();
  qwen2["architectures"] = {"Qwen2MoeForCausalLM"};
  qwen2["model_type"] = "qwen2_moe";
  qwen2["shared_expert_intermediate_size"] = 40;
  qwen2["num_hidden_layers"] = 4;
  qwen2["decoder_sparse_step"] = 2;
  qwen2["mlp_only_layers"] = {3, 7};
  qwen2.erase("head_dim");
  c = parse_model_config(qwen2);
  CHECK(c.architecture == Architecture::qwen2_moe);
  CHECK((c.moe.layers == std::vector<bool>{false, true, false, false} && c.moe.shared_expert_size == 40));
  CHECK((c.attention_bias && !c.output_bias && !c.qk_norm && c.moe.in_layer(1) && !c.moe.in_layer(4)));
  specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.0.mlp.gate_proj.weight") == std::vector<int64_t>{96, 64});  // dense
  CHECK(spec_shape(specs, "model.layers.1.mlp.shared_expert.up_proj.weight") == std::vector<int64_t>{40, 64});
  CHECK(spec_shape(specs, "model.layers.1.mlp.shared_expert.down_proj.weight") == std::vector<int64_t>{64, 40});
  CHECK(spec_shape(specs, "model.layers.1.mlp.shared_expert_gate.weight") == std::vector<int64_t>{1, 64});
  CHECK(spec_shape(specs, "model.layers.1.self_attn.q_proj.bias") == std::vector<int64_t>{64});
  CHECK_FALSE(has_spec(specs, "model.layers.1.mlp.gate_proj.weight"));
  qwen2["qkv_bias"] = false;
  qwen2["use_sliding_window"] = true;  // every other layer from the first, below max_window_layers
  qwen2["max_window_layers"] = 2;
  qwen2["sliding_window"] = 128;
  c = parse_model_config(qwen2);
  CHECK((!c.attention_bias && c.sliding_window == 128 &&
         c.sliding_layers == std::vector<bool>{true, false, false, false}));

  // OLMoE-1B-7B's kind: Llama's layers with norms over whole queries and keys (rounding as Llama's), clip_qkv.
  json olmoe = olmo2_config();
  olmoe["architectures"] = {"OlmoeForCausalLM"};
  olmoe["model_type"] = "olmoe";
  olmoe["clip_qkv"] = 8.0;
  c = parse_model_config(olmoe);  // OlmoeConfig's defaults: 64 experts, 8 per token, not renormalised
  CHECK((c.moe.num_experts == 64 && c.moe.experts_per_token == 8 && !c.moe.normalize_weights));
  olmoe["num_experts"] = 4;
  olmoe["num_experts_per_tok"] = 2;
  c = parse_model_config(olmoe);
  CHECK(c.architecture == Architecture::olmoe);
  CHECK((c.input_norms && !c.output_norms && c.qk_norm && c.qk_norm_whole && !c.norms_scale_in_float32));
  CHECK((c.clip_qkv == 8.0 && c.moe.num_experts == 4 && c.moe.experts_per_token == 2 && c.moe.expert_size == 96));
  specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.0.self_attn.q_norm.weight") == std::vector<int64_t>{64});
  CHECK(spec_shape(specs, "model.layers.0.mlp.experts.3.up_proj.weight") == std::vector<int64_t>{96, 64});
  olmoe["clip_qkv"] = nullptr;
  CHECK(parse_model_config(olmoe).clip_qkv == 0.0);
}

TEST_CASE("model config: inconsistent experts name the file and the field", "[model][moe]") {
  json j = qwen3_moe_config();
  j["num_experts_per_tok"] = 9;
  require_input_error(j, {"dir/config.json", "num_experts_per_tok", "from 1 to num_experts=8, not 9"});
  j = qwen3_moe_config();
  j["num_experts"] = 0;
  require_input_error(j, {"num_experts", "positive"});
  j = qwen3_moe_config();
  j["moe_intermediate_size"] = -1;
  require_input_error(j, {"moe_intermediate_size", "positive"});
  j = qwen3_moe_config();
  j["decoder_sparse_step"] = 0;
  require_input_error(j, {"decoder_sparse_step", "positive"});
  j = qwen3_moe_config();
  j["mlp_only_layers"] = "0";
  require_input_error(j, {"mlp_only_layers", "list of layers"});
  j["mlp_only_layers"] = {0.5};
  require_input_error(j, {"mlp_only_layers", "layer numbers"});
  j = olmo2_config();
  j["model_type"] = "olmoe";
  j["architectures"] = {"OlmoeForCausalLM"};
  j["clip_qkv"] = -3;
  require_input_error(j, {"clip_qkv", "positive"});
}

TEST_CASE("model config: GLM and GLM-4, their fused gate_up, interleaved partial RoPE and norm names", "[model]") {
  // GLM-4-9B-0414's config.json, its sizes shrunk.
  json j = json::parse(R"({
    "architectures": ["Glm4ForCausalLM"], "attention_bias": true, "attention_dropout": 0.0,
    "eos_token_id": [151329, 151336, 151338], "head_dim": 16, "hidden_act": "silu", "hidden_size": 64,
    "initializer_range": 0.02, "intermediate_size": 96, "max_position_embeddings": 32768, "model_type": "glm4",
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": 151329,
    "partial_rotary_factor": 0.5, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16", "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::glm4);
  CHECK((c.fused_gate_up && !c.fused_qkv && c.rope_style == RopeStyle::interleaved && c.rotary_dim == 8));
  CHECK(c.output_norms);
  CHECK((c.input_norms && c.attention_bias && !c.output_bias && !c.norms_scale_in_float32));
  CHECK((model_projections(c) == std::vector<Projection>{Projection::q, Projection::k, Projection::v, Projection::o,
                                                         Projection::gate_up, Projection::down}));
  const auto specs = weight_specs(c);
  for (const char* name :
       {"model.layers.1.post_self_attn_layernorm.weight", "model.layers.1.post_attention_layernorm.weight",
        "model.layers.1.post_mlp_layernorm.weight", "model.layers.1.input_layernorm.weight",
        "model.layers.1.self_attn.v_proj.bias"})
    CHECK(spec_shape(specs, name).size() == 1);
  CHECK(spec_shape(specs, "model.layers.0.mlp.gate_up_proj.weight") == std::vector<int64_t>{192, 64});
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.o_proj.bias"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.pre_feedforward_layernorm.weight"));
  try {
    fit_lora_targets({"gate_proj"}, c, "lora.targets");
    FAIL("no error");
  } catch (const abmll::InputError& e) {
    CHECK(std::string(e.what()).find("gate_up_proj, down_proj (gate and up are one projection)") != std::string::npos);
  }

  // GlmConfig's defaults: a rotated half (the RoPE dict's share first, then the top level's), q/k/v biases, eps
  // 1.5625e-7, head_dim 128; GLM's layers norm their inputs only.
  j["model_type"] = "glm";
  j["architectures"] = {"GlmForCausalLM"};
  for (const char* key : {"partial_rotary_factor", "attention_bias", "rms_norm_eps", "head_dim"}) j.erase(key);
  c = parse_model_config(j);
  CHECK((c.architecture == Architecture::glm && !c.output_norms && c.attention_bias && c.head_dim == 128));
  CHECK((c.rotary_dim == 64 && c.rms_norm_eps == 1.5625e-7));
  CHECK(layer_norm_names(c, 0).attention_output.empty());
  CHECK(layer_norm_names(c, 0).mlp_input == "model.layers.0.post_attention_layernorm.weight");
  j["partial_rotary_factor"] = 0.25;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}, {"partial_rotary_factor", 0.75}};
  CHECK(parse_model_config(j).rotary_dim == 96);
  j["rope_parameters"].erase("partial_rotary_factor");
  CHECK(parse_model_config(j).rotary_dim == 32);
  j["partial_rotary_factor"] = 0.28;  // 35 dimensions
  require_input_error(j, {"partial_rotary_factor", "even number"});
}

TEST_CASE("model config: SmolLM3's layers without RoPE, and its windows", "[model]") {
  // SmolLM3-3B's config.json, its sizes shrunk: no_rope_layers absent, so every fourth layer has no RoPE.
  json j = json::parse(R"({
    "architectures": ["SmolLM3ForCausalLM"], "attention_bias": false, "hidden_act": "silu", "hidden_size": 64,
    "intermediate_size": 96, "max_position_embeddings": 65536, "mlp_bias": false, "model_type": "smollm3",
    "num_attention_heads": 4, "num_hidden_layers": 8, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_theta": 5000000.0, "sliding_window": null, "use_sliding_window": false, "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::smollm3);
  CHECK((c.nope_layers == std::vector<bool>{false, false, false, true, false, false, false, true}));
  CHECK((c.rotates(0) && !c.rotates(3) && c.tie_word_embeddings && c.sliding_window == 0 && c.rope.theta == 5e6));
  j["no_rope_layer_interval"] = 2;
  CHECK(!parse_model_config(j).rotates(1));
  j["no_rope_layers"] = {1, 1, 0, 1, 1, 1, 1, 0};  // given: 0 marks a layer without RoPE
  j["use_sliding_window"] = true;
  j["sliding_window"] = 512;  // on the layers without RoPE unless layer_types says otherwise
  c = parse_model_config(j);
  CHECK((c.nope_layers == std::vector<bool>{false, false, true, false, false, false, false, true}));
  CHECK((c.sliding_window == 512 && c.sliding_layers == c.nope_layers));
  j["no_rope_layers"] = {1, 1, 0};
  require_input_error(j, {"no_rope_layers", "num_hidden_layers=8"});
  j["no_rope_layers"] = {1, 1, 2, 1, 1, 1, 1, 0};
  require_input_error(j, {"no_rope_layers", "1 (RoPE) or 0"});
}

TEST_CASE("model config: Cohere's parallel blocks, LayerNorms, float32 interleaved RoPE and logit scale", "[model]") {
  // Aya Expanse 8B's config.json, its sizes shrunk.
  json j = json::parse(R"({
    "architectures": ["CohereForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 5,
    "eos_token_id": 255001, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
    "intermediate_size": 96, "layer_norm_eps": 1e-05, "logit_scale": 0.125, "max_position_embeddings": 8192,
    "model_type": "cohere", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
    "pad_token_id": 0, "rope_theta": 10000, "torch_dtype": "float16", "use_qk_norm": false, "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::cohere);
  CHECK((c.layer_norms && c.parallel_blocks && c.rope_style == RopeStyle::interleaved_in_float32 && !c.qk_norm));
  CHECK((c.logit_scale == 0.125 && c.rms_norm_eps == 1e-5 && c.tie_word_embeddings && c.rotary_dim == 16));
  auto specs = weight_specs(c);
  CHECK(has_spec(specs, "model.layers.0.input_layernorm.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.post_attention_layernorm.weight"));  // the MLP reads the input's norm
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.q_norm.weight"));
  // Command R+'s per-head query and key norms; CohereConfig's defaults.
  j["use_qk_norm"] = true;
  for (const char* key : {"logit_scale", "layer_norm_eps", "max_position_embeddings"}) j.erase(key);
  c = parse_model_config(j);
  specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.1.self_attn.q_norm.weight") == std::vector<int64_t>{4, 16});
  CHECK(spec_shape(specs, "model.layers.1.self_attn.k_norm.weight") == std::vector<int64_t>{2, 16});
  CHECK((c.logit_scale == 0.0625 && c.rms_norm_eps == 1e-5 && c.max_position_embeddings == 8192));
  j["logit_scale"] = 0;
  require_input_error(j, {"logit_scale", "positive"});
  // Other architectures' logits are not scaled.
  CHECK(parse_model_config(llama31_config()).logit_scale == 1.0);
}

TEST_CASE("model config: Cohere-2's sliding layers rotate, its full-attention layers do not", "[model]") {
  // Command R7B's config.json, its sizes shrunk (4 layers: the default pattern slides 3 of every 4).
  json j = json::parse(R"({
    "architectures": ["Cohere2ForCausalLM"], "attention_bias": false, "hidden_act": "silu", "hidden_size": 64,
    "intermediate_size": 96, "layer_norm_eps": 1e-05, "logit_scale": 0.25, "max_position_embeddings": 132096,
    "model_type": "cohere2", "num_attention_heads": 4, "num_hidden_layers": 4, "num_key_value_heads": 2,
    "rope_theta": 50000, "sliding_window": 4096, "torch_dtype": "bfloat16", "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::cohere2);
  CHECK((c.layer_norms && c.parallel_blocks && !c.qk_norm && c.logit_scale == 0.25 && c.sliding_window == 4096));
  CHECK(c.sliding_layers == std::vector<bool>{true, true, true, false});
  CHECK((c.rotates(0) && c.rotates(2) && !c.rotates(3)));
  j["layer_types"] = {"full_attention", "sliding_attention", "full_attention", "sliding_attention"};
  c = parse_model_config(j);
  CHECK((!c.rotates(0) && c.rotates(1) && !c.rotates(2) && c.rotates(3)));
  j["sliding_window"] = nullptr;  // as Cohere2Attention: no window, and so no RoPE anywhere
  c = parse_model_config(j);
  CHECK((c.sliding_window == 0 && c.sliding_layers.empty() && !c.rotates(1) && !c.rotates(3)));
}

TEST_CASE("model config: GraniteMoE's stacked experts and its router", "[model][moe]") {
  // granite-3.1-1b-a400m-base's config.json, its sizes shrunk.
  json j = json::parse(R"({
    "architectures": ["GraniteMoeForCausalLM"], "attention_bias": false, "attention_multiplier": 0.015625,
    "embedding_multiplier": 12.0, "hidden_act": "silu", "hidden_size": 64, "intermediate_size": 32,
    "logits_scaling": 6.0, "max_position_embeddings": 4096, "model_type": "granitemoe", "num_attention_heads": 4,
    "num_experts_per_tok": 8, "num_hidden_layers": 2, "num_key_value_heads": 2, "num_local_experts": 32,
    "residual_multiplier": 0.22, "rms_norm_eps": 1e-06, "rope_theta": 10000000, "tie_word_embeddings": true,
    "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::granitemoe);
  CHECK((c.moe.num_experts == 32 && c.moe.experts_per_token == 8 && c.moe.expert_size == 32));
  CHECK((c.moe.softmax_top_logits && c.moe.stacked_experts && !c.moe.normalize_weights && !c.moe.float32_weights));
  CHECK((c.embedding_multiplier == 12.0 && c.residual_multiplier == 0.22 && c.logits_scaling == 6.0));
  CHECK(c.attention_scale == 0.015625);
  const auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.1.block_sparse_moe.router.layer.weight") == std::vector<int64_t>{32, 64});
  CHECK(spec_shape(specs, "model.layers.1.block_sparse_moe.input_linear.weight") == std::vector<int64_t>{32, 64, 64});
  CHECK(spec_shape(specs, "model.layers.1.block_sparse_moe.output_linear.weight") ==
        std::vector<int64_t>{32, 64, 32});
  CHECK_FALSE(has_spec(specs, "model.layers.1.mlp.gate_proj.weight"));
  for (const char* key : {"num_local_experts", "num_experts_per_tok"}) j.erase(key);
  c = parse_model_config(j);  // GraniteMoeConfig's defaults
  CHECK((c.moe.num_experts == 8 && c.moe.experts_per_token == 2));
}

namespace {

// DeepSeek-V2-Lite's config.json (4.x spelling: rope_scaling with "type"), its sizes shrunk.
json deepseek_v2_lite_config() {
  return json::parse(R"({
    "architectures": ["DeepseekV2ForCausalLM"], "aux_loss_alpha": 0.001, "bos_token_id": 100000,
    "eos_token_id": 100001, "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 64,
    "intermediate_size": 96, "kv_lora_rank": 32, "max_position_embeddings": 163840, "model_type": "deepseek_v2",
    "moe_intermediate_size": 24, "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 8, "n_shared_experts": 2,
    "norm_topk_prob": false, "num_attention_heads": 4, "num_experts_per_tok": 6, "num_hidden_layers": 3,
    "num_key_value_heads": 4, "pretraining_tp": 1, "q_lora_rank": null, "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 8, "rms_norm_eps": 1e-06,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
                     "original_max_position_embeddings": 4096, "type": "yarn"},
    "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": true,
    "tie_word_embeddings": false, "topk_group": 1, "topk_method": "greedy", "torch_dtype": "bfloat16",
    "v_head_dim": 12, "vocab_size": 256
  })");
}

}  // namespace

TEST_CASE("model config: DeepSeek-V2's latent attention, YaRN's attention scale and softmax routing",
          "[model][moe]") {
  json j = deepseek_v2_lite_config();
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::deepseek_v2);
  const LatentAttentionConfig& a = c.mla;
  CHECK((a.q_rank == 0 && a.kv_rank == 32 && a.nope_dim == 16 && a.rope_dim == 8 && a.v_dim == 12));
  CHECK((c.head_dim == 24 && c.rotary_dim == 8 && c.num_kv_heads == 4));
  CHECK(c.rope_style == RopeStyle::interleaved_in_float32);
  // mscale == mscale_all_dim: cos and sin unscaled; q k^T scaled by (0.1 * 0.707 * ln 40 + 1)^2 / sqrt(24).
  CHECK(c.rope.type == "yarn");
  CHECK(c.rope.attention_factor == Approx(1.0));
  const double m = 0.1 * 0.707 * std::log(40.0) + 1.0;
  CHECK(c.attention_scale == Approx(m * m / std::sqrt(24.0)));
  CHECK((c.moe.num_experts == 8 && c.moe.experts_per_token == 6 && c.moe.expert_size == 24));
  CHECK((c.moe.shared_expert_size == 48 && !c.moe.shared_expert_gated && c.moe.groups == 1));
  CHECK((c.moe.scoring == RouterScoring::softmax && c.moe.float32_logits && c.moe.float32_weights));
  CHECK((!c.moe.normalize_weights && !c.moe.choice_bias && c.moe.routed_scaling_factor == 1.0));
  CHECK(c.moe.layers == std::vector<bool>{false, true, true});
  const auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.0.self_attn.q_proj.weight") == std::vector<int64_t>{96, 64});
  CHECK(spec_shape(specs, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight") == std::vector<int64_t>{40, 64});
  CHECK(spec_shape(specs, "model.layers.0.self_attn.kv_a_layernorm.weight") == std::vector<int64_t>{32});
  CHECK(spec_shape(specs, "model.layers.0.self_attn.kv_b_proj.weight") == std::vector<int64_t>{112, 32});
  CHECK(spec_shape(specs, "model.layers.0.self_attn.o_proj.weight") == std::vector<int64_t>{64, 48});
  CHECK(spec_shape(specs, "model.layers.0.mlp.gate_proj.weight") == std::vector<int64_t>{96, 64});  // dense
  CHECK(spec_shape(specs, "model.layers.2.mlp.experts.7.down_proj.weight") == std::vector<int64_t>{64, 24});
  CHECK(spec_shape(specs, "model.layers.2.mlp.shared_experts.up_proj.weight") == std::vector<int64_t>{48, 64});
  for (const char* absent :
       {"model.layers.0.self_attn.q_a_proj.weight", "model.layers.0.self_attn.k_proj.weight",
        "model.layers.2.mlp.shared_expert_gate.weight", "model.layers.2.mlp.gate.e_score_correction_bias",
        "model.layers.0.self_attn.o_proj.bias"})
    CHECK_FALSE(has_spec(specs, absent));
  // LoRA: the latent attention's projections; "all-linear" means them.
  CHECK((fit_lora_targets({"all-linear"}, c, "lora.targets") ==
         std::set<Projection>{Projection::q, Projection::kv_a, Projection::kv_b, Projection::o}));
  CHECK((fit_lora_targets({"kv_a_proj_with_mqa", "kv_b"}, c, "lora.targets") ==
         std::set<Projection>{Projection::kv_a, Projection::kv_b}));
  CHECK_THROWS_AS(fit_lora_targets({"k_proj"}, c, "lora.targets"), abmll::InputError);
  CHECK_THROWS_AS(fit_lora_targets({"q_a_proj"}, c, "lora.targets"), abmll::InputError);

  j["topk_method"] = "group_limited_greedy";
  j["n_group"] = 4;
  j["topk_group"] = 3;
  c = parse_model_config(j);
  CHECK((c.moe.groups == 4 && c.moe.groups_per_token == 3));
  j["attention_bias"] = true;
  j["q_lora_rank"] = 20;
  j["rope_scaling"] = nullptr;
  c = parse_model_config(j);
  CHECK(c.attention_scale == Approx(1.0 / std::sqrt(24.0)));
  const auto biased = weight_specs(c);
  CHECK(spec_shape(biased, "model.layers.0.self_attn.q_a_proj.bias") == std::vector<int64_t>{20});
  CHECK(spec_shape(biased, "model.layers.0.self_attn.q_a_layernorm.weight") == std::vector<int64_t>{20});
  CHECK(spec_shape(biased, "model.layers.0.self_attn.q_b_proj.weight") == std::vector<int64_t>{96, 20});
  CHECK(spec_shape(biased, "model.layers.0.self_attn.kv_a_proj_with_mqa.bias") == std::vector<int64_t>{40});
  CHECK(spec_shape(biased, "model.layers.0.self_attn.o_proj.bias") == std::vector<int64_t>{64});
  CHECK_FALSE(has_spec(biased, "model.layers.0.self_attn.kv_b_proj.bias"));
}

TEST_CASE("model config: DeepSeek-V3's grouped sigmoid routing, its defaults and refusals", "[model][moe]") {
  json j = deepseek_v2_lite_config();
  j["model_type"] = "deepseek_v3";
  j["architectures"] = {"DeepseekV3ForCausalLM"};
  for (const char* key : {"n_group", "topk_group", "topk_method", "scoring_func", "routed_scaling_factor",
                          "norm_topk_prob", "num_experts_per_tok", "q_lora_rank", "first_k_dense_replace"})
    j.erase(key);
  j["n_routed_experts"] = 16;
  ModelConfig c = parse_model_config(j);  // DeepseekV3Config's defaults
  CHECK((c.mla.q_rank == 1536 && c.rope_style == RopeStyle::interleaved));
  CHECK((c.moe.scoring == RouterScoring::sigmoid && c.moe.choice_bias && c.moe.normalize_weights));
  CHECK((c.moe.groups == 8 && c.moe.groups_per_token == 4 && c.moe.experts_per_token == 8));
  CHECK(c.moe.routed_scaling_factor == 2.5);
  CHECK(c.moe.layers == std::vector<bool>{false, false, false});  // first_k_dense_replace 3
  j["num_hidden_layers"] = 4;
  j["rope_interleave"] = false;
  j["num_key_value_heads"] = 128;  // (DeepseekV3Config's default; latent attention does not read it)
  c = parse_model_config(j);
  CHECK((c.rope_style == RopeStyle::rotate_half && c.num_kv_heads == 4));
  CHECK(c.moe.layers == std::vector<bool>{false, false, false, true});
  CHECK(spec_shape(weight_specs(c), "model.layers.3.mlp.gate.e_score_correction_bias") == std::vector<int64_t>{16});

  const json v3 = j;
  j["scoring_func"] = "softmax";
  require_input_error(j, {"dir/config.json", "scoring_func", "\"sigmoid\""});
  j = v3;
  j["topk_method"] = "greedy";
  require_input_error(j, {"topk_method", "\"noaux_tc\""});
  j = v3;
  j["n_group"] = 3;
  require_input_error(j, {"n_group", "does not divide n_routed_experts=16"});
  j["n_group"] = 16;
  require_input_error(j, {"n_group", "groups of one expert"});
  j = v3;
  j["topk_group"] = 9;
  require_input_error(j, {"topk_group", "from 1 to n_group=8"});
  j = v3;
  j["topk_group"] = 1;
  j["num_experts_per_tok"] = 3;
  require_input_error(j, {"num_experts_per_tok", "more than the 2 experts of topk_group=1"});
  j = v3;
  j["moe_layer_freq"] = 2;
  require_input_error(j, {"moe_layer_freq", "only 1"});
  j = v3;
  j["qk_rope_head_dim"] = 7;
  require_input_error(j, {"qk_rope_head_dim", "even"});
  j = v3;
  j["q_lora_rank"] = 0;
  require_input_error(j, {"q_lora_rank", "positive"});
  j = v3;
  j["qk_nope_head_dim"] = int64_t{1} << 62;  // (a sum with qk_rope_head_dim would overflow)
  require_input_error(j, {"qk_nope_head_dim", "more than any model's"});
  j = v3;
  j["n_shared_experts"] = int64_t{1} << 62;
  require_input_error(j, {"n_shared_experts", "must be from 0 to"});
  j = deepseek_v2_lite_config();
  j["norm_topk_prob"] = true;
  require_input_error(j, {"norm_topk_prob", "never renormalises"});
  j = deepseek_v2_lite_config();
  j.erase("num_experts_per_tok");
  require_input_error(j, {"num_experts_per_tok", "missing"});
  j = deepseek_v2_lite_config();
  j["topk_method"] = "group_limited_greedy";
  j.erase("n_group");
  require_input_error(j, {"n_group", "missing"});
  j = deepseek_v2_lite_config();
  j["mlp_bias"] = true;
  require_input_error(j, {"mlp_bias"});
}

TEST_CASE("model config: GLM-4.7-Flash, DeepSeek-V3's layers with its own defaults and dense layers", "[model][moe]") {
  json j = json::parse(R"({
    "architectures": ["Glm4MoeLiteForCausalLM"], "model_type": "glm4_moe_lite", "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4, "vocab_size": 256,
    "q_lora_rank": 40, "kv_lora_rank": 24, "qk_nope_head_dim": 12, "qk_rope_head_dim": 8, "v_head_dim": 20
  })");
  ModelConfig c = parse_model_config(j);  // Glm4MoeLiteConfig's defaults
  CHECK(c.architecture == Architecture::glm4_moe_lite);
  CHECK((c.mla.q_rank == 40 && c.head_dim == 20 && c.rotary_dim == 8 && c.rope_style == RopeStyle::interleaved));
  CHECK((c.rms_norm_eps == 1e-5 && c.max_position_embeddings == 202752));
  CHECK((c.moe.num_experts == 64 && c.moe.experts_per_token == 4 && c.moe.expert_size == 1536));
  CHECK((c.moe.scoring == RouterScoring::sigmoid && c.moe.choice_bias && c.moe.normalize_weights));
  CHECK((c.moe.groups == 1 && c.moe.routed_scaling_factor == 1.8 && c.moe.shared_expert_size == 1536));
  CHECK(c.moe.layers == std::vector<bool>{false, true, true});
  j["mlp_layer_types"] = {"sparse", "dense", "sparse"};
  j["first_k_dense_replace"] = 2;  // (DeepSeek's key: not GLM's)
  CHECK(parse_model_config(j).moe.layers == std::vector<bool>{true, false, true});
  j["mlp_layer_types"] = {"sparse", "dense"};
  require_input_error(j, {"dir/config.json", "mlp_layer_types", "num_hidden_layers=3"});
  j["mlp_layer_types"] = {"sparse", "moe", "dense"};
  require_input_error(j, {"mlp_layer_types", "\"moe\""});
  j.erase("mlp_layer_types");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}, {"partial_rotary_factor", 0.5}};
  require_input_error(j, {"partial_rotary_factor", "only 1"});
}

TEST_CASE("model config: gpt-oss's sinks, sliding layers, YaRN default and experts", "[model][moe]") {
  json j = json::parse(R"({
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 64, "intermediate_size": 32,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);  // GptOssConfig's defaults
  CHECK(c.architecture == Architecture::gpt_oss);
  CHECK((c.head_dim == 64 && c.attention_bias && c.output_bias && c.attention_sinks && c.norms_scale_in_float32));
  CHECK((c.rms_norm_eps == 1e-5 && c.max_position_embeddings == 131072 && !c.tie_word_embeddings));
  CHECK((c.sliding_window == 128 && c.sliding_layers == std::vector<bool>{true, false, true, false}));
  CHECK((c.rope.type == "yarn" && c.rope.theta == 150000.0 && c.rope.factor == 32.0 && !c.rope.truncate));
  CHECK(c.rope.original_max_position_embeddings == 4096);
  CHECK((c.moe.num_experts == 128 && c.moe.experts_per_token == 4 && c.moe.expert_size == 32));
  CHECK((c.moe.softmax_top_logits && c.moe.transposed_experts && !c.moe.normalize_weights));
  CHECK((c.moe.swiglu_limit == 7.0 && c.moe.swiglu_alpha == 1.702));
  j["num_local_experts"] = 8;
  const auto specs = weight_specs(parse_model_config(j));
  CHECK(spec_shape(specs, "model.layers.0.self_attn.sinks") == std::vector<int64_t>{4});
  CHECK(spec_shape(specs, "model.layers.0.self_attn.o_proj.bias") == std::vector<int64_t>{64});
  CHECK(spec_shape(specs, "model.layers.3.mlp.router.weight") == std::vector<int64_t>{8, 64});
  CHECK(spec_shape(specs, "model.layers.3.mlp.router.bias") == std::vector<int64_t>{8});
  CHECK(spec_shape(specs, "model.layers.3.mlp.experts.gate_up_proj") == std::vector<int64_t>{8, 64, 64});
  CHECK(spec_shape(specs, "model.layers.3.mlp.experts.gate_up_proj_bias") == std::vector<int64_t>{8, 64});
  CHECK(spec_shape(specs, "model.layers.3.mlp.experts.down_proj") == std::vector<int64_t>{8, 32, 64});
  CHECK(spec_shape(specs, "model.layers.3.mlp.experts.down_proj_bias") == std::vector<int64_t>{8, 64});
  CHECK_FALSE(has_spec(specs, "model.layers.3.mlp.gate.weight"));
  // LoRA: its attention only.
  CHECK((fit_lora_targets({"all-linear"}, parse_model_config(j), "lora.targets") ==
         std::set<Projection>{Projection::q, Projection::k, Projection::v, Projection::o}));

  j["layer_types"] = {"full_attention", "sliding_attention", "full_attention", "full_attention"};
  j["sliding_window"] = 32;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 5e5}};
  c = parse_model_config(j);
  CHECK((c.sliding_window == 32 && c.sliding_layers == std::vector<bool>{false, true, false, false}));
  CHECK((c.rope.type == "default" && c.rope.theta == 5e5));
  j["sliding_window"] = nullptr;
  CHECK((parse_model_config(j).sliding_window == 0 && parse_model_config(j).sliding_layers.empty()));
  j["swiglu_limit"] = 0;
  require_input_error(j, {"dir/config.json", "swiglu_limit", "positive"});
  j["swiglu_limit"] = 7.0;
  j["num_experts_per_tok"] = 9;
  require_input_error(j, {"num_experts_per_tok", "from 1 to num_local_experts=8"});
  j["num_experts_per_tok"] = 4;
  // The released checkpoints' experts: MXFP4 blocks and scales instead of the two weights.
  j["quantization_config"] = {{"quant_method", "mxfp4"}};
  c = parse_model_config(j);
  CHECK(c.moe.mxfp4_experts);
  const auto packed = weight_specs(c);
  CHECK(spec_shape(packed, "model.layers.3.mlp.experts.gate_up_proj_blocks") == std::vector<int64_t>{8, 64, 2, 16});
  CHECK(spec_shape(packed, "model.layers.3.mlp.experts.gate_up_proj_scales") == std::vector<int64_t>{8, 64, 2});
  CHECK(spec_shape(packed, "model.layers.3.mlp.experts.down_proj_blocks") == std::vector<int64_t>{8, 64, 1, 16});
  CHECK(spec_shape(packed, "model.layers.3.mlp.experts.down_proj_scales") == std::vector<int64_t>{8, 64, 1});
  CHECK(spec_shape(packed, "model.layers.3.mlp.experts.down_proj_bias") == std::vector<int64_t>{8, 64});
  CHECK_FALSE(has_spec(packed, "model.layers.3.mlp.experts.gate_up_proj"));
  j["intermediate_size"] = 48;  // not whole blocks of 32
  require_input_error(j, {"quantization_config", "multiples of 32"});
  j["intermediate_size"] = 32;
  j["quantization_config"] = {{"quant_method", "awq"}};  // anything else quantized
  require_input_error(j, {"quantization_config", "\"awq\"", "not supported"});
}

TEST_CASE("model config: Apertus's head norms, ungated xIELU MLP, norm names and default RoPE", "[model]") {
  // Apertus-8B's config.json as released (4.x spelling), its sizes shrunk.
  json j = json::parse(R"({
    "architectures": ["ApertusForCausalLM"], "model_type": "apertus", "hidden_act": "xielu", "hidden_size": 64,
    "intermediate_size": 96, "max_position_embeddings": 65536, "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "qk_norm": true, "post_norm": false, "mlp_bias": false, "rms_norm_eps": 1e-05,
    "rope_theta": 12000000,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": false, "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::apertus);
  CHECK((c.activation == Activation::xielu && c.qk_norm && !c.qk_norm_whole && !c.attention_bias && !c.mlp_bias));
  CHECK((c.head_dim == 16 && c.rope.type == "llama3" && c.rope.theta == 12e6 && c.rope.factor == 8.0));
  const auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.1.attention_layernorm.weight") == std::vector<int64_t>{64});
  CHECK(spec_shape(specs, "model.layers.1.feedforward_layernorm.weight") == std::vector<int64_t>{64});
  CHECK(spec_shape(specs, "model.layers.1.self_attn.q_norm.weight") == std::vector<int64_t>{16});
  CHECK(spec_shape(specs, "model.layers.1.mlp.up_proj.weight") == std::vector<int64_t>{96, 64});
  CHECK(spec_shape(specs, "model.layers.1.mlp.act_fn.alpha_p") == std::vector<int64_t>{1});
  CHECK(spec_shape(specs, "model.layers.1.mlp.act_fn.alpha_n") == std::vector<int64_t>{1});
  CHECK(spec_shape(specs, "model.layers.1.mlp.act_fn.beta").empty());
  CHECK(spec_shape(specs, "model.layers.1.mlp.act_fn.eps").empty());
  CHECK_FALSE(has_spec(specs, "model.layers.1.mlp.gate_proj.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.1.input_layernorm.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.1.post_attention_layernorm.weight"));
  // LoRA: no gate to adapt.
  CHECK((fit_lora_targets({"all-linear"}, c, "lora.targets") ==
         std::set<Projection>{Projection::q, Projection::k, Projection::v, Projection::o, Projection::up,
                              Projection::down}));
  REQUIRE_THROWS_WITH(fit_lora_targets({"gate_proj"}, c, "lora.targets"),
                      Catch::Contains("not a module of this apertus model") && Catch::Contains("has no gate"));

  // ApertusConfig's defaults: without a RoPE dict its own (a top-level rope_theta does not reach it).
  for (const char* key : {"rope_scaling", "max_position_embeddings", "rms_norm_eps", "hidden_act"}) j.erase(key);
  j["rope_theta"] = 500000.0;
  c = parse_model_config(j);
  CHECK((c.rope.type == "llama3" && c.rope.theta == 12e6 && c.rope.factor == 8.0));
  CHECK((c.rope.low_freq_factor == 1.0 && c.rope.high_freq_factor == 4.0));
  CHECK(c.rope.original_max_position_embeddings == 8192);
  CHECK((c.max_position_embeddings == 65536 && c.rms_norm_eps == 1e-5 && c.activation == Activation::xielu));
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e4}};
  CHECK((parse_model_config(j).rope.type == "default" && parse_model_config(j).rope.theta == 1e4));
  j["attention_bias"] = true;  // LlamaAttention's: all four projections
  CHECK((parse_model_config(j).attention_bias && parse_model_config(j).output_bias));
  j["hidden_act"] = "relu2";
  require_input_error(j, {"dir/config.json", "hidden_act", "\"relu2\"", "\"xielu\""});
}

TEST_CASE("model config: EXAONE-4's output norms, head norms, sliding layers and layers without RoPE", "[model]") {
  // EXAONE-4.0-32B's config.json, its sizes shrunk (8 layers).
  json j = json::parse(R"({
    "architectures": ["Exaone4ForCausalLM"], "model_type": "exaone4", "hidden_act": "silu", "hidden_size": 64,
    "intermediate_size": 96, "max_position_embeddings": 131072, "num_attention_heads": 4, "num_hidden_layers": 8,
    "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-05, "sliding_window": 4096,
    "sliding_window_pattern": 4, "tie_word_embeddings": false, "vocab_size": 256,
    "rope_scaling": {"factor": 16.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "rope_theta": 1000000
  })");
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::exaone4);
  CHECK((!c.input_norms && c.output_norms && c.qk_norm && !c.qk_norm_whole && !c.norms_scale_in_float32));
  CHECK((!c.attention_bias && !c.output_bias && !c.mlp_bias && c.rope.type == "llama3" && c.rope.theta == 1e6));
  const std::vector<bool> sliding = {true, true, true, false, true, true, true, false};
  CHECK((c.sliding_window == 4096 && c.sliding_layers == sliding));
  CHECK((c.rotates(0) && !c.rotates(3) && c.rotates(6) && !c.rotates(7)));  // only the sliding layers rotate
  const auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.3.post_attention_layernorm.weight") == std::vector<int64_t>{64});
  CHECK(spec_shape(specs, "model.layers.3.post_feedforward_layernorm.weight") == std::vector<int64_t>{64});
  CHECK(spec_shape(specs, "model.layers.3.self_attn.k_norm.weight") == std::vector<int64_t>{16});
  CHECK_FALSE(has_spec(specs, "model.layers.3.input_layernorm.weight"));

  j["layer_types"] = json::array();
  for (int i = 0; i < 8; ++i) j["layer_types"].push_back(i == 0 ? "full_attention" : "sliding_attention");
  j["sliding_window_pattern"] = "LLLG";  // (read only without layer_types)
  c = parse_model_config(j);
  CHECK((c.sliding_layers[0] == false && c.sliding_layers[7] && !c.rotates(0) && c.rotates(7)));
  j.erase("layer_types");
  require_input_error(j, {"dir/config.json", "sliding_window_pattern", "\"LLLG\"", "layer_types"});
  j["sliding_window_pattern"] = 0;
  require_input_error(j, {"sliding_window_pattern", "positive"});
  // Without a window (EXAONE-4.0-1.2B), every layer attends to everything and rotates.
  j["sliding_window"] = nullptr;
  c = parse_model_config(j);
  CHECK((c.sliding_window == 0 && c.sliding_layers.empty() && c.rotates(3) && c.rotates(7)));
  // Exaone4Config's defaults: a window of 4096 on three layers of four, theta 1e4, head_dim from the sizes.
  for (const char* key : {"sliding_window", "sliding_window_pattern", "rope_scaling", "rope_theta", "head_dim",
                          "rms_norm_eps", "max_position_embeddings"})
    j.erase(key);
  c = parse_model_config(j);
  CHECK((c.sliding_window == 4096 && c.sliding_layers == sliding && c.rope.theta == 1e4 && c.head_dim == 16));
  CHECK((c.rms_norm_eps == 1e-5 && c.max_position_embeddings == 2048));
}

TEST_CASE("model config: Seed-OSS's attention biases and defaults", "[model]") {
  json j = json::parse(R"({
    "architectures": ["SeedOssForCausalLM"], "model_type": "seed_oss", "hidden_size": 64, "intermediate_size": 96,
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);  // SeedOssConfig's defaults
  CHECK(c.architecture == Architecture::seed_oss);
  CHECK((c.attention_bias && !c.output_bias && !c.mlp_bias && c.head_dim == 128 && !c.tie_word_embeddings));
  CHECK((c.max_position_embeddings == 524288 && c.rms_norm_eps == 1e-6 && c.rope.theta == 1e4));
  auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.1.self_attn.q_proj.bias") == std::vector<int64_t>{512});
  CHECK(spec_shape(specs, "model.layers.1.self_attn.v_proj.bias") == std::vector<int64_t>{256});
  CHECK_FALSE(has_spec(specs, "model.layers.1.self_attn.o_proj.bias"));
  j["attention_out_bias"] = true;
  j["mlp_bias"] = true;
  j["attention_bias"] = false;
  specs = weight_specs(parse_model_config(j));
  CHECK(has_spec(specs, "model.layers.1.self_attn.o_proj.bias"));
  CHECK(has_spec(specs, "model.layers.1.mlp.down_proj.bias"));
  CHECK_FALSE(has_spec(specs, "model.layers.1.self_attn.q_proj.bias"));
}

TEST_CASE("model config: GLM-4.5's attention and DeepSeek-V3's experts with its defaults", "[model][moe]") {
  json j = json::parse(R"({
    "architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe", "hidden_size": 64, "intermediate_size": 96,
    "num_attention_heads": 4, "num_hidden_layers": 3, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);  // Glm4MoeConfig's defaults
  CHECK(c.architecture == Architecture::glm4_moe);
  CHECK((!c.attention_bias && !c.output_bias && !c.qk_norm && c.rope_style == RopeStyle::rotate_half));
  CHECK((c.rope.partial_rotary_factor == 0.5 && c.rotary_dim == 8 && c.rms_norm_eps == 1e-5));
  CHECK((c.max_position_embeddings == 131072 && !c.tie_word_embeddings && !c.mla.defined()));
  const MoeConfig& m = c.moe;
  CHECK((m.num_experts == 128 && m.experts_per_token == 8 && m.expert_size == 1408 && m.shared_expert_size == 1408));
  CHECK((m.scoring == RouterScoring::sigmoid && m.choice_bias && m.normalize_weights && !m.shared_expert_gated));
  CHECK((m.routed_scaling_factor == 1.0 && m.groups == 1 && m.groups_per_token == 1));
  CHECK((m.layers == std::vector<bool>{false, true, true}));
  j["attention_bias"] = true;
  j["use_qk_norm"] = true;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}, {"partial_rotary_factor", 0.25}};
  j["n_routed_experts"] = 16;
  j["first_k_dense_replace"] = 2;
  c = parse_model_config(j);
  CHECK((c.attention_bias && !c.output_bias && c.qk_norm && c.rotary_dim == 4 && c.rope.theta == 1e6));
  CHECK((c.moe.layers == std::vector<bool>{false, false, true}));
  const auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.2.mlp.gate.weight") == std::vector<int64_t>{16, 64});
  CHECK(spec_shape(specs, "model.layers.2.mlp.gate.e_score_correction_bias") == std::vector<int64_t>{16});
  CHECK(spec_shape(specs, "model.layers.2.mlp.experts.15.down_proj.weight") == std::vector<int64_t>{64, 1408});
  CHECK(spec_shape(specs, "model.layers.2.mlp.shared_experts.up_proj.weight") == std::vector<int64_t>{1408, 64});
  CHECK(spec_shape(specs, "model.layers.1.mlp.gate_proj.weight") == std::vector<int64_t>{96, 64});
  CHECK(spec_shape(specs, "model.layers.2.self_attn.q_proj.bias") == std::vector<int64_t>{64});
  CHECK(spec_shape(specs, "model.layers.2.self_attn.q_norm.weight") == std::vector<int64_t>{16});
  CHECK_FALSE(has_spec(specs, "model.layers.2.self_attn.o_proj.bias"));
  CHECK((fit_lora_targets({"all-linear"}, c, "lora.targets") ==
         std::set<Projection>{Projection::q, Projection::k, Projection::v, Projection::o}));
  j["n_group"] = 3;  // does not divide 16
  require_input_error(j, {"n_group", "does not divide n_routed_experts=16"});
}

TEST_CASE("model config: Ministral-3's defaults and query scale, and the multimodal Mistral-3", "[model]") {
  json j = json::parse(R"({
    "architectures": ["Ministral3ForCausalLM"], "model_type": "ministral3", "hidden_size": 64, "intermediate_size": 96,
    "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);  // Ministral3Config's defaults
  CHECK(c.architecture == Architecture::ministral3);
  CHECK((c.head_dim == 128 && c.rms_norm_eps == 1e-5 && c.max_position_embeddings == 262144));
  CHECK((c.sliding_window == 0 && c.sliding_layers.empty() && !c.tie_word_embeddings && !c.attention_bias));
  CHECK((c.rope.type == "yarn" && c.rope.theta == 1e6 && c.rope.factor == 16.0 && c.rope.attention_factor == 1.0));
  CHECK((c.rope.original_max_position_embeddings == 16384 && c.query_scale_beta == 0.1 &&
         c.query_scale_length == 16384 && c.scales_queries()));
  j["sliding_window"] = 32;  // then on every layer (Mistral's model reads no layer_types)
  j["layer_types"] = {"full_attention", "sliding_attention"};
  c = parse_model_config(j);
  CHECK((c.sliding_window == 32 && c.sliding_layers == std::vector<bool>{true, true}));
  j.erase("sliding_window");
  j["rope_parameters"] = {{"rope_type", "default"}, {"llama_4_scaling_beta", 0.5},
                          {"original_max_position_embeddings", 8}};
  c = parse_model_config(j, "dir/config.json");
  CHECK((c.rope.type == "default" && c.rope.theta == 1e4 && c.query_scale_beta == 0.5 && c.query_scale_length == 8));
  // 1 + beta ln(1 + floor(p / 8)): 1 below 8, 1 + 0.5 ln 2 from 8, 1 + 0.5 ln 3 from 16.
  const at::Tensor positions = at::arange(20, at::kLong).view({1, 20});
  const at::Tensor scale = query_scale(positions, c, at::kFloat);
  REQUIRE(scale.sizes() == at::IntArrayRef{1, 1, 20, 1});
  CHECK(scale[0][0][7][0].item<float>() == 1.0f);
  CHECK(scale[0][0][8][0].item<float>() == Approx(1.0 + 0.5 * std::log(2.0)).epsilon(1e-7));
  CHECK(scale[0][0][15][0].item<float>() == Approx(1.0 + 0.5 * std::log(2.0)).epsilon(1e-7));
  CHECK(scale[0][0][16][0].item<float>() == Approx(1.0 + 0.5 * std::log(3.0)).epsilon(1e-7));
  j["rope_parameters"].erase("llama_4_scaling_beta");
  require_input_error(j, {"dir/config.json", "rope_parameters", "llama_4_scaling_beta", "is missing"});
  j["rope_parameters"]["llama_4_scaling_beta"] = 0.1;
  j["rope_parameters"]["original_max_position_embeddings"] = 0;
  require_input_error(j, {"dir/config.json", "original_max_position_embeddings", "must be positive"});

  // Mistral3ForConditionalGeneration: its text_config, a Ministral-3 or (by default) a Mistral; tied by default.
  json text = j;
  text.erase("architectures");
  text["rope_parameters"]["original_max_position_embeddings"] = 16;
  json mm = {{"architectures", {"Mistral3ForConditionalGeneration"}}, {"model_type", "mistral3"},
             {"text_config", text}, {"vision_config", {{"model_type", "pixtral"}}}, {"dtype", "bfloat16"}};
  c = parse_model_config(mm, "dir/config.json");
  CHECK((c.architecture == Architecture::ministral3 && c.multimodal && c.tie_word_embeddings));
  CHECK((c.query_scale_length == 16 && c.dtype == "bfloat16"));
  mm["tie_word_embeddings"] = false;
  mm["text_config"].erase("model_type");  // MistralConfig's defaults: a window of 4096
  mm["text_config"].erase("rope_parameters");
  c = parse_model_config(mm, "dir/config.json");
  CHECK((c.architecture == Architecture::mistral && c.multimodal && !c.tie_word_embeddings && !c.scales_queries()));
  CHECK((c.sliding_window == 4096 && c.rms_norm_eps == 1e-6 && c.head_dim == 16));
  mm["text_config"]["model_type"] = "llama";
  require_input_error(mm, {"dir/config.json", "text_config", "\"llama\"", "\"ministral3\" or \"mistral\""});
  mm.erase("text_config");
  require_input_error(mm, {"dir/config.json", "text_config", "must be an object", "Mistral-3"});
}

TEST_CASE("model config: Qwen3.5's hybrid layers, its defaults, its multimodal form and its MoE", "[model]") {
  json j = json::parse(R"({
    "architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text", "hidden_size": 64, "intermediate_size": 96,
    "num_attention_heads": 4, "num_hidden_layers": 8, "num_key_value_heads": 2, "vocab_size": 256
  })");
  ModelConfig c = parse_model_config(j);  // Qwen3_5TextConfig's defaults: three DeltaNet layers to one attention
  CHECK(c.architecture == Architecture::qwen3_5);
  CHECK((c.head_dim == 256 && c.rotary_dim == 64 && c.rms_norm_eps == 1e-6 && c.max_position_embeddings == 32768));
  CHECK((c.gated_attention && c.qk_norm && c.unit_offset_norms && c.norms_scale_in_float32 && !c.attention_bias &&
         !c.tie_word_embeddings && c.recurrent()));
  CHECK(c.linear_attention_layers == std::vector<bool>{true, true, true, false, true, true, true, false});
  const DeltaNetConfig& d = c.delta_net;
  CHECK((d.key_heads == 16 && d.value_heads == 32 && d.key_head_dim == 128 && d.value_head_dim == 128 &&
         d.conv_kernel == 4 && d.conv_width() == 2 * 2048 + 4096));
  // The two kinds of layers have different tensors and projections.
  const auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.0.linear_attn.in_proj_qkv.weight") == std::vector<int64_t>{8192, 64});
  CHECK(spec_shape(specs, "model.layers.0.linear_attn.conv1d.weight") == std::vector<int64_t>{8192, 1, 4});
  CHECK(spec_shape(specs, "model.layers.0.linear_attn.A_log") == std::vector<int64_t>{32});
  CHECK(spec_shape(specs, "model.layers.0.linear_attn.norm.weight") == std::vector<int64_t>{128});
  CHECK(spec_shape(specs, "model.layers.3.self_attn.q_proj.weight") == std::vector<int64_t>{2 * 4 * 256, 64});
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.q_proj.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.q_norm.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.3.linear_attn.A_log"));
  CHECK((fit_lora_targets({"all-linear"}, c, "lora.targets") ==
         std::set<Projection>{Projection::q, Projection::k, Projection::v, Projection::o, Projection::delta_qkv,
                              Projection::delta_z, Projection::delta_b, Projection::delta_a, Projection::delta_out,
                              Projection::gate, Projection::up, Projection::down}));
  CHECK((layer_has_projection(c, 0, Projection::delta_out) && !layer_has_projection(c, 0, Projection::q) &&
         layer_has_projection(c, 3, Projection::q) && !layer_has_projection(c, 3, Projection::delta_qkv) &&
         layer_has_projection(c, 0, Projection::down) && layer_has_projection(c, 3, Projection::down)));
  LoraSettings lora;
  lora.targets = {Projection::q, Projection::delta_z};
  CHECK((lora_sites(c, lora) == std::vector<LinearSite>{{0, Projection::delta_z}, {1, Projection::delta_z},
                                                       {2, Projection::delta_z}, {3, Projection::q},
                                                       {4, Projection::delta_z}, {5, Projection::delta_z},
                                                       {6, Projection::delta_z}, {7, Projection::q}}));

  j["full_attention_interval"] = 2;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e7}, {"partial_rotary_factor", 0.5},
                          {"mrope_section", {11, 11, 10}}, {"mrope_interleaved", true}};
  c = parse_model_config(j, "dir/config.json");
  CHECK((c.linear_attention_layers == std::vector<bool>{true, false, true, false, true, false, true, false}));
  CHECK((c.rope.theta == 1e7 && c.rotary_dim == 128));
  j["layer_types"] = json::array({"full_attention"});
  require_input_error(j, {"dir/config.json", "layer_types", "num_hidden_layers=8"});
  j["layer_types"] = json(std::vector<std::string>(8, "full_attention"));
  c = parse_model_config(j);  // no DeltaNet layer: an attention-only model
  CHECK((!c.recurrent() && c.gated_attention));
  j["layer_types"][2] = "sliding_attention";
  require_input_error(j, {"dir/config.json", "layer_types", "\"sliding_attention\"", "\"linear_attention\""});
  j.erase("layer_types");
  j["linear_num_key_heads"] = 3;
  require_input_error(j, {"dir/config.json", "linear_num_value_heads", "linear_num_key_heads=3 does not divide"});
  j["linear_num_key_heads"] = 0;
  require_input_error(j, {"dir/config.json", "linear_num_key_heads", "must be positive"});
  j.erase("linear_num_key_heads");
  j["attn_output_gate"] = false;
  require_input_error(j, {"dir/config.json", "attn_output_gate", "always gates"});
  j.erase("attn_output_gate");

  // Qwen3_5ForConditionalGeneration: its text_config, a Qwen3.5's; untied by default.
  json text = j;
  text.erase("architectures");
  json mm = {{"architectures", {"Qwen3_5ForConditionalGeneration"}}, {"model_type", "qwen3_5"},
             {"text_config", text}, {"vision_config", {{"model_type", "qwen3_5_vision"}}}, {"dtype", "bfloat16"}};
  c = parse_model_config(mm, "dir/config.json");
  CHECK((c.architecture == Architecture::qwen3_5 && c.multimodal && !c.tie_word_embeddings && c.recurrent()));
  CHECK(c.dtype == "bfloat16");
  mm["text_config"]["model_type"] = "qwen3";
  require_input_error(mm, {"dir/config.json", "text_config", "\"qwen3\"", "\"qwen3_5_text\""});

  // Qwen3.5-MoE: the same layers, experts in every one (Qwen3NextConfig's defaults), no intermediate_size.
  json moe = j;
  moe.erase("intermediate_size");
  moe["architectures"] = {"Qwen3_5MoeForCausalLM"};
  moe["model_type"] = "qwen3_5_moe_text";
  c = parse_model_config(moe);
  CHECK((c.architecture == Architecture::qwen3_5_moe && c.recurrent() && c.gated_attention));
  CHECK((c.moe.num_experts == 256 && c.moe.experts_per_token == 8 && c.moe.expert_size == 512 &&
         c.moe.shared_expert_size == 512 && c.moe.shared_expert_gated && c.moe.normalize_weights));
  CHECK(c.moe.layers == std::vector<bool>(8, true));
  CHECK((model_projections(c) == std::vector<Projection>{Projection::q, Projection::k, Projection::v, Projection::o,
                                                         Projection::delta_qkv, Projection::delta_z,
                                                         Projection::delta_b, Projection::delta_a,
                                                         Projection::delta_out}));
  CHECK(has_spec(weight_specs(c), "model.layers.0.mlp.shared_expert_gate.weight"));
  CHECK(has_spec(weight_specs(c), "model.layers.3.mlp.experts.255.down_proj.weight"));
  moe["num_experts_per_tok"] = 300;
  require_input_error(moe, {"num_experts_per_tok", "from 1 to num_experts=256"});
  moe.erase("num_experts_per_tok");
  json moe_mm = {{"architectures", {"Qwen3_5MoeForConditionalGeneration"}}, {"model_type", "qwen3_5_moe"},
                 {"text_config", moe}};
  moe_mm["text_config"].erase("architectures");
  c = parse_model_config(moe_mm);
  CHECK((c.architecture == Architecture::qwen3_5_moe && c.multimodal && !c.tie_word_embeddings));
  moe_mm["text_config"]["model_type"] = "qwen3_5_text";
  require_input_error(moe_mm, {"text_config", "\"qwen3_5_text\"", "\"qwen3_5_moe_text\""});
}

TEST_CASE("model config: Granite-4.0's Mamba-2 and attention layers, its shared MLP, its experts", "[model]") {
  // The released form: layer types "mamba" and "attention", no RoPE, no experts (granite-4.0-h-micro's shape).
  json j = json::parse(R"({
    "architectures": ["GraniteMoeHybridForCausalLM"], "model_type": "granitemoehybrid", "hidden_size": 64,
    "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 4, "num_key_value_heads": 2,
    "vocab_size": 256, "layer_types": ["mamba", "mamba", "attention", "mamba"], "position_embedding_type": "nope",
    "num_local_experts": 0, "shared_intermediate_size": 80, "mamba_n_heads": 8, "mamba_n_groups": 2,
    "mamba_d_state": 16, "mamba_d_head": "auto", "embedding_multiplier": 12, "attention_multiplier": 0.0078125,
    "residual_multiplier": 0.22, "logits_scaling": 8,
    "time_step_limit": [0.0, {"__float__": "Infinity"}]
  })");
  ModelConfig c = parse_model_config(j);
  CHECK(c.architecture == Architecture::granitemoehybrid);
  CHECK((c.recurrent() && c.linear_attention_layers == std::vector<bool>{true, true, false, true}));
  CHECK((!c.rotates(2) && c.embedding_multiplier == 12 && c.attention_scale == 0.0078125 &&
         c.residual_multiplier == 0.22 && c.logits_scaling == 8 && c.moe.num_experts == 0 &&
         c.intermediate_size == 80 && !c.attention_bias && !c.tie_word_embeddings));
  const Mamba2Config& m = c.mamba;  // GraniteMoeHybridConfig's defaults where not given
  CHECK((m.heads == 8 && m.head_dim == 16 && m.groups == 2 && m.state == 16 && m.conv_kernel == 4 &&
         m.chunk == 256 && m.conv_bias && !m.proj_bias && m.dt_min == 0 && std::isinf(m.dt_max)));
  CHECK((m.inner() == 128 && m.conv_width() == 128 + 64 && m.in_width() == 2 * 128 + 64 + 8));
  const auto specs = weight_specs(c);
  CHECK(spec_shape(specs, "model.layers.0.mamba.in_proj.weight") == std::vector<int64_t>{328, 64});
  CHECK(spec_shape(specs, "model.layers.0.mamba.conv1d.weight") == std::vector<int64_t>{192, 1, 4});
  CHECK(spec_shape(specs, "model.layers.0.mamba.conv1d.bias") == std::vector<int64_t>{192});
  CHECK(spec_shape(specs, "model.layers.0.mamba.D") == std::vector<int64_t>{8});
  CHECK(spec_shape(specs, "model.layers.0.mamba.norm.weight") == std::vector<int64_t>{128});
  CHECK(spec_shape(specs, "model.layers.0.mamba.out_proj.weight") == std::vector<int64_t>{64, 128});
  CHECK(spec_shape(specs, "model.layers.2.shared_mlp.input_linear.weight") == std::vector<int64_t>{160, 64});
  CHECK(spec_shape(specs, "model.layers.0.shared_mlp.output_linear.weight") == std::vector<int64_t>{64, 80});
  CHECK_FALSE(has_spec(specs, "model.layers.0.mamba.in_proj.bias"));
  CHECK_FALSE(has_spec(specs, "model.layers.0.self_attn.q_proj.weight"));
  CHECK_FALSE(has_spec(specs, "model.layers.2.mamba.A_log"));
  // "out_proj" is the Mamba-2 layer's here (a Qwen3.5's: its DeltaNet's).
  CHECK((fit_lora_targets({"in_proj", "out_proj", "input_linear"}, c, "lora.targets") ==
         std::set<Projection>{Projection::mamba_in, Projection::mamba_out, Projection::shared_gate_up}));
  CHECK((fit_lora_targets({"all-linear"}, c, "lora.targets") ==
         std::set<Projection>{Projection::q, Projection::k, Projection::v, Projection::o, Projection::mamba_in,
                              Projection::mamba_out, Projection::shared_gate_up, Projection::shared_down}));
  CHECK_THROWS_WITH(fit_lora_targets({"up_proj"}, c, "lora.targets"),
                    Catch::Contains("in_proj, out_proj, input_linear, output_linear"));
  CHECK_THROWS_WITH(fit_lora_targets({"in_proj_qkv"}, c, "lora.targets"), Catch::Contains("granitemoehybrid"));

  // transformers 5's spelling, RoPE, limits, biases; another layers_block_type spelling.
  j["layer_types"] = {"linear_attention", "full_attention", "full_attention", "linear_attention"};
  j["position_embedding_type"] = "rope";
  j["time_step_limit"] = {0.001, 0.5};
  j["mamba_proj_bias"] = true;
  j["mamba_conv_bias"] = false;
  c = parse_model_config(j, "dir/config.json");
  CHECK((c.rotates(1) && c.linear_attention_layers == std::vector<bool>{true, false, false, true}));
  CHECK((c.mamba.dt_min == 0.001 && c.mamba.dt_max == 0.5 && c.mamba.proj_bias && !c.mamba.conv_bias));
  CHECK(has_spec(weight_specs(c), "model.layers.0.mamba.out_proj.bias"));
  CHECK_FALSE(has_spec(weight_specs(c), "model.layers.0.mamba.conv1d.bias"));
  j.erase("layer_types");
  c = parse_model_config(j);  // every layer Mamba-2 by default
  CHECK(c.linear_attention_layers == std::vector<bool>(4, true));
  j["layers_block_type"] = {"attention", "attention", "attention", "attention"};
  c = parse_model_config(j);  // attention only (granite-4.0-micro): not recurrent
  CHECK((!c.recurrent() && c.mamba.defined()));

  // Refused: sizes that do not fit, an unknown position embedding, a limit out of order.
  j["mamba_n_heads"] = 6;
  require_input_error(j, {"dir/config.json", "mamba_n_heads", "does not divide mamba_expand x hidden_size = 128"});
  j["mamba_n_heads"] = 8;
  j["mamba_d_head"] = 8;
  require_input_error(j, {"dir/config.json", "mamba_d_head", "128"});
  j["mamba_d_head"] = "auto";
  j["mamba_n_groups"] = 3;
  require_input_error(j, {"dir/config.json", "mamba_n_groups", "does not divide mamba_n_heads=8"});
  j["mamba_n_groups"] = 1;
  j["position_embedding_type"] = "alibi";
  require_input_error(j, {"dir/config.json", "position_embedding_type", "alibi"});
  j["position_embedding_type"] = nullptr;
  j["time_step_limit"] = {1.0, 0.5};
  require_input_error(j, {"dir/config.json", "time_step_limit", "min <= max"});
  j["time_step_limit"] = {0.0, {{"__float__", "NaN"}}};
  require_input_error(j, {"dir/config.json", "time_step_limit"});
  j["time_step_limit"] = nullptr;
  j["mamba_chunk_size"] = 0;
  require_input_error(j, {"dir/config.json", "mamba_chunk_size", "must be positive"});
  j["mamba_chunk_size"] = 256;
  // Sizes whose products would overflow: refused before any is formed.
  j["mamba_expand"] = int64_t{1} << 27;  // x 64 = 2^33
  require_input_error(j, {"dir/config.json", "mamba_expand", "more than 2^32"});
  j["mamba_expand"] = 2;
  j["mamba_d_head"] = int64_t{1} << 62;
  require_input_error(j, {"dir/config.json", "mamba_d_head", "128"});
  j["mamba_d_head"] = "auto";
  j["mamba_n_groups"] = 2;
  j["mamba_d_state"] = int64_t{1} << 32;
  require_input_error(j, {"dir/config.json", "mamba_d_state", "more than 2^32"});
  j["mamba_d_state"] = 16;

  // Experts beside the shared MLP (granite-4.0-h-tiny's form): GraniteMoE's, the shared MLP a shared expert.
  j["num_local_experts"] = 4;
  j["num_experts_per_tok"] = 2;
  j["intermediate_size"] = 16;
  c = parse_model_config(j);
  CHECK((c.moe.num_experts == 4 && c.moe.experts_per_token == 2 && c.moe.expert_size == 16 &&
         c.moe.stacked_experts && c.moe.softmax_top_logits && c.moe.shared_expert_size == 80 &&
         !c.moe.shared_expert_gated && c.moe.in_layer(3)));
  const auto moe_specs = weight_specs(c);
  CHECK(spec_shape(moe_specs, "model.layers.0.block_sparse_moe.input_linear.weight") ==
        std::vector<int64_t>{4, 32, 64});
  CHECK(spec_shape(moe_specs, "model.layers.0.block_sparse_moe.router.layer.weight") == std::vector<int64_t>{4, 64});
  CHECK(spec_shape(moe_specs, "model.layers.0.shared_mlp.input_linear.weight") == std::vector<int64_t>{160, 64});
  CHECK_THROWS_WITH(fit_lora_targets({"input_linear"}, c, "lora.targets"), Catch::Contains("experts"));
  j["num_experts_per_tok"] = 5;
  require_input_error(j, {"dir/config.json", "num_experts_per_tok", "num_local_experts=4"});
}

TEST_CASE("model config: Python's Infinity and NaN in config.json, read as transformers 5 spells them", "[model]") {
  // transformers 4.x saved Mamba-2 configs' time_step_limit with json.dumps, which writes a bare Infinity.
  const std::string text = R"({"architectures": ["GraniteMoeHybridForCausalLM"], "model_type": "granitemoehybrid",
    "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 2,
    "vocab_size": 256, "num_local_experts": 0, "mamba_n_heads": 8, "mamba_d_state": 16,
    "note": "Infinity, NaN and \"-Infinity\" inside strings stay as they are \\",
    "time_step_limit": [0.0, Infinity]})";
  json j = parse_config_json(text, "dir/config.json");
  CHECK(j.at("note") == "Infinity, NaN and \"-Infinity\" inside strings stay as they are \\");
  ModelConfig c = parse_model_config(j);
  CHECK((c.mamba.dt_min == 0.0 && std::isinf(c.mamba.dt_max) && c.mamba.dt_max > 0));
  // The string some tools write, and -Infinity.
  j["time_step_limit"] = {"-Infinity", "Infinity"};
  c = parse_model_config(j);
  CHECK((std::isinf(c.mamba.dt_min) && c.mamba.dt_min < 0));
  // NaN where a number is expected: refused by field; a syntax error elsewhere: reported for the text as it is.
  std::string nan_eps = text;
  nan_eps.replace(nan_eps.find("\"vocab_size\""), 0, "\"rms_norm_eps\": NaN, ");
  CHECK_THROWS_WITH(parse_model_config(parse_config_json(nan_eps, "dir/config.json"), "dir/config.json"),
                    Catch::Contains("rms_norm_eps"));
  std::string broken = text;
  broken.replace(broken.find("\"vocab_size\""), 0, "\"x\": [1,, ");
  CHECK_THROWS_WITH(parse_config_json(broken, "dir/config.json"), Catch::Contains("dir/config.json: not valid JSON"));
  CHECK_THROWS_AS(parse_config_json("{\"a\": Infinit}", "x"), abmll::InputError);
}

TEST_CASE("model config: a tied config over a checkpoint with its own head, as transformers settles it", "[model]") {
  ScratchDir dir;
  const at::Tensor embeddings = at::randn({32, 8});
  ModelConfig c;
  c.tie_word_embeddings = true;
  auto settled = [&](const at::Tensor& head, const std::string& file) {
    abmll::io::NamedTensors tensors = {{"model.embed_tokens.weight", embeddings}};
    if (head.defined()) tensors.emplace_back("lm_head.weight", head);
    abmll::io::write_safetensors(dir / file, tensors);
    ModelConfig out = c;
    settle_tied_head(out, abmll::io::TensorStore::open(dir / file));
    return out.tie_word_embeddings;
  };
  CHECK(settled({}, "tied.safetensors"));                          // no head: tied
  CHECK(settled(embeddings.clone(), "copy.safetensors"));          // a redundant copy: tied
  CHECK_FALSE(settled(embeddings.mul(2), "own.safetensors"));      // its own head: used
  CHECK_FALSE(settled(at::randn({16, 8}), "other.safetensors"));   // (of another shape: the loader's to judge)
  c.tie_word_embeddings = false;
  CHECK_FALSE(settled({}, "untied.safetensors"));
}

TEST_CASE("model weights: fine-grained FP8 blocks, whole and ragged, and their config", "[model]") {
  json j = llama31_config();
  j["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "static"},
                              {"weight_block_size", {128, 64}}};
  ModelConfig c = parse_model_config(j);
  CHECK((c.fp8_weights && c.fp8_block == std::array<int64_t, 2>{128, 64}));
  j["quantization_config"]["weight_block_size"] = nullptr;  // one scale per tensor
  c = parse_model_config(j);
  CHECK((c.fp8_weights && c.fp8_block == std::array<int64_t, 2>{0, 0}));
  j["quantization_config"]["weight_block_size"] = {128};
  require_input_error(j, {"dir/config.json", "quantization_config", "weight_block_size", "[rows, columns]"});
  j["quantization_config"]["weight_block_size"] = {128, 0};
  require_input_error(j, {"weight_block_size", "positive whole numbers"});
  j["quantization_config"]["weight_block_size"] = {128, 128};
  j["quantization_config"]["fmt"] = "e5m2";
  require_input_error(j, {"quantization_config", "fmt", "E4M3 only"});

  // A [5, 7] weight in blocks of 2 x 3 (ragged on both edges: a [3, 3] grid), against each value times its block's
  // scale computed here; then whole blocks of 5 x 7 and one scale per tensor.
  const at::Tensor weight = (at::arange(35, at::kFloat).view({5, 7}) / 8.0 - 2.0).to(at::kFloat8_e4m3fn);
  const at::Tensor scales = at::arange(1, 10, at::kFloat).view({3, 3}) / 16.0;
  const at::Tensor got = dequantize_fp8(weight, scales, {2, 3}, at::kFloat, "w");
  const at::Tensor values = weight.to(at::kFloat);
  float largest = 0.0f;
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t k = 0; k < 7; ++k) {
      const float want = values[r][k].item<float>() * scales[r / 2][k / 3].item<float>();
      largest = std::max(largest, std::abs(got[r][k].item<float>() - want));
    }
  CHECK(largest == 0.0f);
  CHECK(at::equal(dequantize_fp8(weight, scales.narrow(0, 0, 1).narrow(1, 0, 1), {5, 7}, at::kFloat, "w"),
                  values * scales[0][0]));
  CHECK(at::equal(dequantize_fp8(weight, scales[1][1].reshape({1}), {0, 0}, at::kBFloat16, "w"),
                  (values * scales[1][1]).to(at::kBFloat16)));
  CHECK_THROWS_WITH(dequantize_fp8(weight, scales, {4, 3}, at::kFloat, "layers.0.w"),
                    Catch::Contains("'layers.0.w_scale_inv' is [3, 3]") && Catch::Contains("need [2, 3]"));
  CHECK_THROWS_WITH(dequantize_fp8(weight, scales, {0, 0}, at::kFloat, "w"), Catch::Contains("one scale"));
  CHECK_THROWS_WITH(dequantize_fp8(values, scales, {2, 3}, at::kFloat, "w"), Catch::Contains("float8_e4m3fn"));
}
