// The name table: every tensor a checkpoint of one of model_config.h's architectures holds, by its Hugging Face name,
// with the shape the config implies. Loading checks each tensor against this table (presence and shape), and the LoRA
// code picks its target modules from the same projection names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace abmll::model {

// The linear projections of one decoder layer; the adaptable modules (LoRA targets). Phi-3 fuses q, k and v into
// qkv (their outputs side by side) and gate and up into gate_up; DeepSeek's latent attention has q (or q_a then q_b),
// kv_a (kv_a_proj_with_mqa), kv_b and o. delta_*: a Gated DeltaNet layer's (Qwen3.5, linear_attn.in_proj_qkv,
// in_proj_z, in_proj_b, in_proj_a and out_proj); mamba_*: a Mamba-2 layer's (Granite-4.0, mamba.in_proj and
// out_proj); shared_*: Granite-4.0's shared MLP's (shared_mlp.input_linear, gate and up as one, and output_linear).
enum class Projection { q, k, v, o, gate, up, down, qkv, gate_up, q_a, q_b, kv_a, kv_b,
                        delta_qkv, delta_z, delta_b, delta_a, delta_out, mamba_in, mamba_out,
                        shared_gate_up, shared_down };
inline constexpr Projection kAllProjections[] = {
    Projection::q,         Projection::k,       Projection::v,       Projection::o,       Projection::gate,
    Projection::up,        Projection::down,    Projection::qkv,     Projection::gate_up, Projection::q_a,
    Projection::q_b,       Projection::kv_a,    Projection::kv_b,    Projection::delta_qkv, Projection::delta_z,
    Projection::delta_b,   Projection::delta_a, Projection::delta_out, Projection::mamba_in, Projection::mamba_out,
    Projection::shared_gate_up, Projection::shared_down};
// The seven of an unfused layer (what "all-linear" means without a model at hand).
inline constexpr Projection kSeparateProjections[] = {Projection::q,    Projection::k,  Projection::v,   Projection::o,
                                                      Projection::gate, Projection::up, Projection::down};

// The projections `config`'s layers have that LoRA may adapt: the seven, Phi-3's qkv, o, gate_up and down, GLM's q,
// k, v, o, gate_up and down, or a mixture of experts' q, k, v and o (its experts are not adapted; DeepSeek's: its
// latent attention's q or q_a and q_b, kv_a, kv_b and o); Qwen3.5's Gated DeltaNet layers' five besides (its
// full-attention layers have q, k, v and o, the others the five); Granite-4.0's q, k, v, o (of its attention layers),
// mamba_in and mamba_out (of its Mamba-2 layers) and, without experts, its shared MLP's two.
std::vector<Projection> model_projections(const ModelConfig& config);
// Whether layer `layer` of `config` has projection `p` (a Qwen3.5's layers have either attention's or a Gated
// DeltaNet's; a Granite-4.0's attention's or a Mamba-2 layer's).
bool layer_has_projection(const ModelConfig& config, int64_t layer, Projection p);

// The module's HF name: "q_proj", ..., "down_proj", "qkv_proj", "gate_up_proj", "q_a_proj", "q_b_proj",
// "kv_a_proj_with_mqa", "kv_b_proj", "in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a", "out_proj" (a DeltaNet's
// and a Mamba-2 layer's), "in_proj", "input_linear", "output_linear".
std::string projection_name(Projection p);
// The projections named `name` ("q_proj" or "q"; "kv_a_proj_with_mqa" only in full): none, one, or (for "out_proj")
// a Gated DeltaNet's and a Mamba-2 layer's, of which a model has one at most.
std::vector<Projection> projections_named(const std::string& name);
// "model.layers.{layer}.self_attn.q_proj" / "model.layers.{layer}.mlp.gate_proj" /
// "model.layers.{layer}.linear_attn.out_proj" / "model.layers.{layer}.mamba.in_proj" /
// "model.layers.{layer}.shared_mlp.input_linear": the module path, without ".weight".
std::string projection_path(int64_t layer, Projection p);
// The projection's [out, in] weight shape and whether it has a bias under `config`.
std::vector<int64_t> projection_shape(const ModelConfig& config, Projection p);
bool projection_has_bias(const ModelConfig& config, Projection p);

// The tensors of a layer with experts (config.moe.in_layer(layer)): the router [E, D] ("model.layers.{layer}.mlp.gate
// .weight"; Mixtral's block is "block_sparse_moe"), expert e's gate, up or down weight ("...mlp.experts.{e}.gate_proj
// .weight"; Mixtral's w1, w3 and w2), Qwen2-MoE's shared expert's ("...mlp.shared_expert.gate_proj.weight") and the
// gate of its output, [1, D] ("...mlp.shared_expert_gate.weight"); DeepSeek's shared experts'
// ("...mlp.shared_experts.gate_proj.weight") and DeepSeek-V3's bias of the choice, [E]
// ("...mlp.gate.e_score_correction_bias"). gpt-oss's router is "...mlp.router.weight", with a bias [E]
// ("...mlp.router.bias").
std::string router_weight_name(const ModelConfig& config, int64_t layer);
std::string router_bias_name(int64_t layer);
std::string choice_bias_name(int64_t layer);
// GraniteMoE's experts, all of a layer in one tensor: gate_up ("...block_sparse_moe.input_linear.weight", [E, 2 Fe,
// D]) or down ("...output_linear.weight", [E, D, Fe]); router_weight_name is its "...router.layer.weight".
std::string stacked_experts_name(int64_t layer, Projection p);
// gpt-oss's experts, all of a layer in one tensor and its bias: gate_up ("...mlp.experts.gate_up_proj", [E, D, 2 Fe];
// "..._bias", [E, 2 Fe]) or down ("...mlp.experts.down_proj", [E, Fe, D]; "..._bias", [E, D]); in MXFP4, the weight's
// name with "_blocks" and "_scales".
std::string transposed_experts_name(int64_t layer, Projection p, bool bias);
std::string expert_weight_name(const ModelConfig& config, int64_t layer, int64_t expert, Projection p);
std::string shared_expert_weight_name(const ModelConfig& config, int64_t layer, Projection p);
std::string shared_expert_gate_name(int64_t layer);
// Apertus's xIELU parameters: "model.layers.{layer}.mlp.act_fn.{parameter}" (alpha_p, alpha_n, beta, eps).
std::string xielu_parameter_name(int64_t layer, const char* parameter);

// A layer's RMSNorm weights by what they norm (full tensor names; "" where the layer has none): its input
// (input_layernorm, Apertus's attention_layernorm; not OLMo-2's), the attention's output (Gemma-2's and OLMo-2's
// post_attention_layernorm, GLM-4's post_self_attn_layernorm), the MLP's input (post_attention_layernorm; Gemma-2's
// pre_feedforward_layernorm, Apertus's feedforward_layernorm; not OLMo-2's nor Cohere's, whose MLP reads the input's)
// and the MLP's output (Gemma-2's and OLMo-2's post_feedforward_layernorm, GLM-4's post_mlp_layernorm).
struct LayerNormNames {
  std::string input, attention_output, mlp_input, mlp_output;
};
LayerNormNames layer_norm_names(const ModelConfig& config, int64_t layer);

// One tensor of the checkpoint.
struct WeightSpec {
  std::string name;              // e.g. "model.layers.3.self_attn.k_proj.bias"
  std::vector<int64_t> shape;    // what the config implies
  bool packed = false;           // uint8 (MXFP4 blocks or scales), read as stored
};

// Every tensor the checkpoint must hold under `config`, in a fixed order: embeddings, then per layer the input
// norm, q/k/v/o (weights then biases; a Qwen3.5's DeltaNet layer: its five projections, convolution, A_log, dt_bias
// and gated norm instead), (Qwen3, Gemma-3, OLMo-2) the query and key norms, the attention's output
// norm, the MLP's input norm, gate/up/down (or the router, the experts' gate/up/down, the shared expert's and its
// gate), the MLP's output norm (layer_norm_names: those the layer has), then the final norm and lm_head (absent when
// tie_word_embeddings).
std::vector<WeightSpec> weight_specs(const ModelConfig& config);

// Checks a tensor's actual shape against its spec: throws abmll::InputError naming the tensor, both shapes and a
// hint naming the config's sizes (a checkpoint of another model size, or a config.json from another model).
void check_weight_shape(const WeightSpec& spec, const std::vector<int64_t>& actual, const ModelConfig& config);

}  // namespace abmll::model
