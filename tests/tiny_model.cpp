// Random tiny model folders (see tiny_model.h).
#include "tiny_model.h"

#include <ATen/Context.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/full.h>
#include <ATen/ops/randn.h>
#include <nlohmann/json.hpp>

#include "io/safetensors_writer.h"
#include "model/model_config.h"
#include "model/weight_names.h"
#include "test_support.h"

namespace abmll::test {

const char* to_string(TinyModel kind) {
  switch (kind) {
    case TinyModel::llama31: return "llama3.1";
    case TinyModel::qwen2: return "qwen2";
    case TinyModel::qwen3: return "qwen3";
    case TinyModel::gemma2: return "gemma2";
    case TinyModel::gemma3: return "gemma3";
    case TinyModel::olmo2: return "olmo2";
    case TinyModel::phi3: return "phi3";
    case TinyModel::granite: return "granite";
    case TinyModel::qwen2_moe: return "qwen2_moe";
    case TinyModel::olmoe: return "olmoe";
    case TinyModel::glm4: return "glm4";
    case TinyModel::cohere: return "cohere";
    case TinyModel::granitemoe: return "granitemoe";
    case TinyModel::deepseek_v3: return "deepseek_v3";
    case TinyModel::gpt_oss: return "gpt_oss";
    case TinyModel::apertus: return "apertus";
    case TinyModel::exaone4: return "exaone4";
    case TinyModel::ministral3: return "ministral3";
    case TinyModel::qwen3_5: return "qwen3_5";
    case TinyModel::granite4: return "granite4";
  }
  return "?";
}

void write_tiny_model(const std::filesystem::path& dir, TinyModel kind) {
  const bool llama = kind == TinyModel::llama31;
  nlohmann::json j = {{"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 50},
                      {"rms_norm_eps", 1e-6}, {"tie_word_embeddings", !llama}};
  switch (kind) {
    case TinyModel::llama31:
      j["architectures"] = {"LlamaForCausalLM"};
      j["model_type"] = "llama";
      j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                              {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 16}};
      break;
    case TinyModel::qwen2:
      j["architectures"] = {"Qwen2ForCausalLM"};
      j["model_type"] = "qwen2";
      break;
    case TinyModel::qwen3:
      j["architectures"] = {"Qwen3ForCausalLM"};
      j["model_type"] = "qwen3";
      j["head_dim"] = 12;
      break;
    case TinyModel::gemma2:
      j["architectures"] = {"Gemma2ForCausalLM"};
      j["model_type"] = "gemma2";
      j["head_dim"] = 8;
      j["query_pre_attn_scalar"] = 6;
      j["attn_logit_softcapping"] = 1.5;
      j["final_logit_softcapping"] = 2.0;
      break;
    case TinyModel::gemma3:
      j["architectures"] = {"Gemma3ForCausalLM"};
      j["model_type"] = "gemma3_text";
      j["head_dim"] = 8;
      j["query_pre_attn_scalar"] = 6;
      j["sliding_window"] = 4;  // shorter than most test sequences, so that the window binds
      j["layer_types"] = {"sliding_attention", "full_attention"};
      j["rope_parameters"] = {{"full_attention", {{"rope_type", "linear"}, {"factor", 4.0}, {"rope_theta", 1e6}}},
                              {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 100.0}}}};
      break;
    case TinyModel::olmo2:
      j["architectures"] = {"Olmo2ForCausalLM"};
      j["model_type"] = "olmo2";
      j["attention_bias"] = true;
      break;
    case TinyModel::phi3:
      j["architectures"] = {"Phi3ForCausalLM"};
      j["model_type"] = "phi3";
      j["sliding_window"] = 4;  // as Phi-3 mini 4k's 2047, on every layer; shorter than most test sequences
      break;
    case TinyModel::granite:
      j["architectures"] = {"GraniteForCausalLM"};
      j["model_type"] = "granite";
      j["embedding_multiplier"] = 3.0;
      j["residual_multiplier"] = 0.5;
      j["attention_multiplier"] = 0.2;
      j["logits_scaling"] = 4.0;
      break;
    case TinyModel::qwen2_moe:
      j["architectures"] = {"Qwen2MoeForCausalLM"};
      j["model_type"] = "qwen2_moe";
      j["num_experts"] = 4;
      j["num_experts_per_tok"] = 2;
      j["moe_intermediate_size"] = 16;
      j["shared_expert_intermediate_size"] = 24;
      j["mlp_only_layers"] = {1};
      break;
    case TinyModel::olmoe:
      j["architectures"] = {"OlmoeForCausalLM"};
      j["model_type"] = "olmoe";
      j["num_experts"] = 4;
      j["num_experts_per_tok"] = 2;
      j["norm_topk_prob"] = true;
      j["clip_qkv"] = 1.0;
      break;
    case TinyModel::glm4:
      j["architectures"] = {"Glm4ForCausalLM"};
      j["model_type"] = "glm4";
      j["head_dim"] = 8;
      break;
    case TinyModel::cohere:
      j["architectures"] = {"CohereForCausalLM"};
      j["model_type"] = "cohere";
      j["use_qk_norm"] = true;
      j["logit_scale"] = 0.5;
      break;
    case TinyModel::granitemoe:
      j["architectures"] = {"GraniteMoeForCausalLM"};
      j["model_type"] = "granitemoe";
      j["num_local_experts"] = 4;
      j["num_experts_per_tok"] = 2;
      j["embedding_multiplier"] = 3.0;
      j["residual_multiplier"] = 0.5;
      j["attention_multiplier"] = 0.2;
      j["logits_scaling"] = 4.0;
      break;
    case TinyModel::deepseek_v3:
      j["architectures"] = {"DeepseekV3ForCausalLM"};
      j["model_type"] = "deepseek_v3";
      j["q_lora_rank"] = 16;
      j["kv_lora_rank"] = 12;
      j["qk_nope_head_dim"] = 6;
      j["qk_rope_head_dim"] = 4;
      j["v_head_dim"] = 8;
      j["n_routed_experts"] = 4;
      j["num_experts_per_tok"] = 2;
      j["moe_intermediate_size"] = 16;
      j["n_shared_experts"] = 1;
      j["first_k_dense_replace"] = 1;
      j["n_group"] = 2;
      j["topk_group"] = 1;
      j["routed_scaling_factor"] = 2.0;
      break;
    case TinyModel::gpt_oss:
      j["architectures"] = {"GptOssForCausalLM"};
      j["model_type"] = "gpt_oss";
      j["head_dim"] = 8;
      j["num_local_experts"] = 4;
      j["num_experts_per_tok"] = 2;
      j["sliding_window"] = 4;  // layer 0's; shorter than most test sequences
      j["swiglu_limit"] = 1.0;   // binds on some entries
      j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 150000.0}, {"factor", 8.0},
                              {"original_max_position_embeddings", 16}, {"truncate", false}};
      break;
    case TinyModel::apertus:
      j["architectures"] = {"ApertusForCausalLM"};
      j["model_type"] = "apertus";
      j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 12000000.0}, {"factor", 8.0},
                              {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 16}};
      break;
    case TinyModel::exaone4:
      j["architectures"] = {"Exaone4ForCausalLM"};
      j["model_type"] = "exaone4";
      j["sliding_window"] = 4;  // layer 0's (it rotates); layer 1 attends to everything without RoPE
      j["layer_types"] = {"sliding_attention", "full_attention"};
      break;
    case TinyModel::ministral3:
      j["architectures"] = {"Ministral3ForCausalLM"};
      j["model_type"] = "ministral3";
      j["head_dim"] = 8;
      j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 1000000.0}, {"factor", 4.0},
                              {"original_max_position_embeddings", 2}, {"llama_4_scaling_beta", 0.5}};
      break;
    case TinyModel::qwen3_5:
      j["architectures"] = {"Qwen3_5ForCausalLM"};
      j["model_type"] = "qwen3_5_text";
      j["head_dim"] = 8;
      j["layer_types"] = {"linear_attention", "full_attention"};
      j["linear_num_key_heads"] = 2;
      j["linear_num_value_heads"] = 4;
      j["linear_key_head_dim"] = 8;
      j["linear_value_head_dim"] = 8;
      j["linear_conv_kernel_dim"] = 3;
      j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}, {"partial_rotary_factor", 0.5}};
      break;
    case TinyModel::granite4:
      j["architectures"] = {"GraniteMoeHybridForCausalLM"};
      j["model_type"] = "granitemoehybrid";
      j["layer_types"] = {"mamba", "attention"};
      j["position_embedding_type"] = nullptr;
      j["num_local_experts"] = 0;
      j["shared_intermediate_size"] = 40;
      j["mamba_n_heads"] = 4;
      j["mamba_n_groups"] = 2;
      j["mamba_d_state"] = 4;
      j["mamba_d_conv"] = 3;
      j["mamba_chunk_size"] = 3;
      j["mamba_proj_bias"] = true;
      j["embedding_multiplier"] = 2.0;
      j["residual_multiplier"] = 0.5;
      j["attention_multiplier"] = 0.3;
      j["logits_scaling"] = 1.5;
      break;
  }
  std::filesystem::create_directories(dir);
  write_text(dir / "config.json", j.dump());
  const model::ModelConfig c = model::parse_model_config(j);
  const int seeds[] = {2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};  // by TinyModel
  at::manual_seed(seeds[static_cast<int>(kind)]);
  io::NamedTensors tensors;
  for (const auto& s : model::weight_specs(c)) {  // norms (Cohere's per-head ones are [heads, Dh]) and biases near 1
    // (Qwen3.5's convolution taps too: a moving sum keeps its DeltaNet's values, and so the output its gated norm
    // divides by its size, away from 0; with taps near 0 the loss curves so sharply that central differences miss
    // the meta-gradient by more than 1e-5.)
    const bool near_one = s.shape.size() == 1 || s.name.find("_norm.") != std::string::npos ||
                          s.name.ends_with(".conv1d.weight");
    // (Apertus's xIELU: its slopes' parameters near 1, beta near its initial 0.5, eps its own -1e-6.)
    const double shift = s.name.ends_with(".act_fn.beta") ? 0.5 : near_one ? 1.0 : 0.0;
    tensors.emplace_back(s.name, s.name.ends_with(".act_fn.eps") ? at::full(s.shape, -1e-6, at::kFloat)
                                                                 : at::randn(s.shape, at::kFloat) * 0.2 + shift);
  }
  io::write_safetensors(dir / "model.safetensors", tensors);
}

model::Decoder load_tiny_model(const std::filesystem::path& dir, TinyModel kind, at::ScalarType dtype) {
  write_tiny_model(dir, kind);
  model::WeightOptions options;
  options.dtype = dtype;
  return model::Decoder::load(dir, options);
}

model::ModelConfig small_model_config(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads,
                                      int64_t kv_heads, int64_t vocab) {
  model::ModelConfig c;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.vocab_size = vocab;
  return c;
}

}  // namespace abmll::test
