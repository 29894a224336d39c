// The architecture of a Hugging Face decoder checkpoint, read from its config.json: Llama (Llama-2/3/3.1/3.2), Qwen2
// (Qwen2, Qwen2.5), Qwen3 (dense), Mistral, Ministral, Gemma, Gemma-2, Gemma-3 (text-only, and the language model of
// the multimodal 4B-27B releases), OLMo-2, OLMo-3, Phi-3, Granite, Cohere, Cohere-2, GLM, GLM-4, SmolLM3, Apertus,
// EXAONE-4, Seed-OSS and Ministral-3 (text-only, and the language model of the multimodal Ministral-3 and
// Mistral-Small-3.1 releases), Qwen3.5 (text-only, and the language model of its multimodal releases), Granite-4.0
// (with its mixtures of experts), and the mixtures of experts Qwen3.5-MoE (the same forms), Mixtral, Qwen2-MoE,
// Qwen3-MoE, OLMoE, GraniteMoE, DeepSeek-V2, DeepSeek-V3, GLM-4.7-Flash (DeepSeek-V3's form), GLM-4.5 and gpt-oss. All
// are the same decoder (RMSNorm or LayerNorm, RoPE, grouped-query attention (DeepSeek's: latent attention; Qwen3.5's:
// Gated DeltaNet layers besides; Granite-4.0's: Mamba-2 layers besides), gated MLPs (but Apertus's)); they differ in
// which projections carry biases, in Qwen3's and Gemma-3's RMSNorm of each query and key head before RoPE, in Gemma's
// scaled embeddings, (1 + w) norms and GELU gate, in Gemma-2's and Gemma-3's norms on the attention and MLP outputs,
// Gemma-2's soft-capped attention scores and logits, Gemma-3's and OLMo-3's two RoPEs (one for their sliding-window
// layers), in OLMo-2's norms on the blocks' outputs only and over whole queries and keys, in Phi-3's and GLM's fused
// projections, GLM's interleaved RoPE, SmolLM3's and Cohere-2's layers without RoPE, in Granite's multipliers, Cohere's
// parallel blocks and LayerNorms, Apertus's ungated xIELU MLP, Ministral-3's queries scaled by position, Qwen3.5's
// gated attention output, in the routed experts that replace the MLP of a mixture of experts (and OLMoE's clipped
// queries, keys and values, DeepSeek's grouped routing and latent attention), and in their defaults. Anything this
// decoder does not implement (another architecture, another RoPE type, another activation) is refused when parsing,
// naming the field and its value, rather than computing something different from transformers.
//
// Both spellings transformers has used are read: the 4.x one (top-level `rope_theta`, `rope_scaling` with `type` or
// `rope_type`, `torch_dtype`) and the 5.x one that save_pretrained writes today (`rope_parameters` holding
// `rope_theta` and `rope_type`, `dtype`).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace abmll::model {

// mistral: Llama's math; ministral: Mistral's with the sliding layers layer_types names; smollm3: Llama's with layers
// without RoPE; phi3: Llama's with fused projections; granite: Llama's with multipliers; cohere: parallel attention and
// MLP, LayerNorms, interleaved RoPE; cohere2: Cohere's with sliding-window layers, the others without RoPE; glm:
// Llama's with a fused gate_up_proj and interleaved, partial RoPE; glm4: GLM's with output norms; mixtral: Mistral's
// with experts; qwen2_moe, qwen3_moe: Qwen2's and Qwen3's with experts; olmoe: Llama's with OLMo-2's whole-query and
// key norms, and experts; granitemoe: Granite's with experts; deepseek_v2, deepseek_v3: Llama's layers with latent
// attention and experts (a softmax router, or V3's sigmoid one with its bias), shared experts, and dense first layers;
// glm4_moe_lite: DeepSeek-V3's, its dense layers named by mlp_layer_types; gpt_oss: Llama's attention with biases,
// attention sinks and every other layer sliding, experts with biases and a clamped SwiGLU; apertus: Llama's with
// Qwen3's query and key head norms and an ungated MLP with the xIELU activation; exaone4: OLMo-2's output-only norms
// with Qwen3's head norms, three of every four layers sliding and the others without RoPE; seed_oss: Llama's with its
// own attention biases; glm4_moe: Llama's attention with q, k and v biases, optional head norms and half-rotated
// heads, and DeepSeek-V3's experts; ministral3: Mistral's with Llama-4's position-dependent query scale; qwen3_5:
// Qwen3.5's hybrid of Gated DeltaNet layers (linear attention, gated_delta_net.h) and gated full-attention layers;
// qwen3_5_moe: Qwen3.5's layers with Qwen2-MoE's experts (a gated shared expert) in every layer; granitemoehybrid:
// Granite-4.0's, Granite's multipliers over Mamba-2 layers (mamba2.h) beside attention layers (with or without RoPE)
// and a shared MLP in every layer, GraniteMoE's experts beside it in the mixtures of experts.
enum class Architecture {
  llama, qwen2, qwen3, mistral, gemma, gemma2, gemma3, olmo2, olmo3, phi3, granite, cohere, cohere2, glm, glm4,
  smollm3, mixtral, qwen2_moe, qwen3_moe, olmoe, granitemoe, deepseek_v2, deepseek_v3, glm4_moe_lite, gpt_oss,
  apertus, ministral, exaone4, seed_oss, glm4_moe, ministral3, qwen3_5, qwen3_5_moe, granitemoehybrid
};

// The config's model_type: "llama", "qwen2", ..., "gemma3_text", ..., "granite", "cohere", "cohere2", "glm", "glm4",
// "smollm3", "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "granitemoe", "deepseek_v2", "deepseek_v3",
// "glm4_moe_lite", "gpt_oss", "apertus", "ministral", "exaone4", "seed_oss", "glm4_moe", "ministral3",
// "qwen3_5_text", "qwen3_5_moe_text" or "granitemoehybrid".
std::string to_string(Architecture arch);

// How RoPE pairs a head's rotated dimensions. rotate_half: (i, i + R/2), as Llama; interleaved: (2i, 2i + 1), as GLM,
// in the model's dtype; interleaved_in_float32: the same computed in float32 and rounded once (Cohere).
enum class RopeStyle { rotate_half, interleaved, interleaved_in_float32 };

// The MLP's gate activation: act(gate(x)) * up(x). silu: SwiGLU (Llama, Qwen, Mistral); gelu_tanh: GELU's tanh
// approximation (Gemma's "gelu_pytorch_tanh", and Gemma's legacy "gelu", which transformers reads as it); gelu: the
// exact GELU (a Gemma-2 config's "gelu"). xielu: Apertus's MLP, which has no gate: xielu(up(x)) with the layer's
// learned parameters (xielu.h).
enum class Activation { silu, gelu_tanh, gelu, xielu };

// Rotary position embedding parameters. `type` "default" is plain RoPE; "linear" divides every frequency by `factor`
// (Gemma-3's full-attention layers); "llama3" rescales the low frequencies (Llama-3.1 and later) with the four fields
// below; "longrope" divides them by per-frequency factors; "yarn" blends each frequency between itself and itself /
// factor by how many rotations it makes in original_max_position_embeddings (between beta_slow and beta_fast), and
// scales cos and sin by attention_factor (YaRN: Qwen2.5's and Qwen3's long-context settings, OLMo-3's full-attention
// layers).
struct RopeConfig {
  std::string type = "default";
  double theta = 10000.0;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;
  double attention_factor = 1.0;  // multiplies cos and sin (YaRN's; 1 for every other type)
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  bool truncate = true;           // YaRN's correction range rounded outwards to whole dimensions
  // LongRoPE (Phi-3.5, Phi-4-mini): each frequency divided by its factor, short_factor's while every position is
  // below original_max_position_embeddings, long_factor's once one reaches it; one factor per rotated pair.
  std::vector<double> short_factor, long_factor;
  // The share of each head's dimensions RoPE rotates, the first ones (Phi-4-mini: 0.75; GLM: 0.5); 1 but for Phi-3
  // and GLM.
  double partial_rotary_factor = 1.0;
};

// How a router turns its logits into scores: softmax over the E experts, or (DeepSeek-V3) each expert's sigmoid.
enum class RouterScoring { softmax, sigmoid };

// The mixture of experts that replaces the MLP of a layer (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, GraniteMoE,
// DeepSeek-V2 and -V3, gpt-oss): a router scores the E experts for each token (softmax in float32 of x R^T), the
// token goes through its k best, and their outputs are summed, each times its router probability (renormalised over
// the k when `normalize_weights`; GraniteMoE's and gpt-oss's: the softmax of the k largest logits; DeepSeek's: times
// routed_scaling_factor). Each expert is a gated MLP of width `expert_size`, none with biases but gpt-oss's. Qwen2-MoE
// adds a shared expert every token goes through, its output times sigmoid(x g^T); DeepSeek one without a gate.
//
// DeepSeek's group-limited routing splits the E experts into `groups` groups of E / groups, ranks the groups (V2: by
// their best score; V3: by the sum of their two best biased scores) and picks the k experts among the
// `groups_per_token` best groups only.
struct MoeConfig {
  int64_t num_experts = 0;         // E (0: a dense model)
  int64_t experts_per_token = 0;   // k
  int64_t expert_size = 0;         // each expert's inner width (moe_intermediate_size; Mixtral's, OLMoE's F)
  bool normalize_weights = false;  // norm_topk_prob (Mixtral: always)
  // GraniteMoE: the k largest logits (in float32) softmaxed among themselves, instead of the k largest probabilities
  // of a softmax over all E (the same weights but for rounding).
  bool softmax_top_logits = false;
  // GraniteMoE's checkpoints hold each layer's experts as two 3-D tensors (input_linear [E, 2 Fe, D], gate's rows
  // first, and output_linear [E, D, Fe]) rather than a gate, up and down per expert.
  bool stacked_experts = false;
  // gpt-oss: each layer's experts as gate_up_proj [E, D, 2 Fe] (input-major, gate and up in alternating columns) and
  // down_proj [E, Fe, D], each with a bias ([E, 2 Fe], [E, D]); the router has a bias too. Its experts' activation is
  // the clamped SwiGLU (up + 1) * g sigmoid(alpha g), g = min(gate, limit), up clamped to [-limit, limit].
  bool transposed_experts = false;
  // gpt-oss's released checkpoints: those two tensors in MXFP4 (mxfp4.h), each as `_blocks` [E, out, in / 32, 16]
  // and `_scales` [E, out, in / 32] (quantization_config's quant_method "mxfp4"); dequantized when loaded.
  bool mxfp4_experts = false;
  double swiglu_limit = 0.0;  // 0: the plain gated MLP
  double swiglu_alpha = 1.0;
  // Mixtral weights the experts' outputs by float32 probabilities (the product rounded once, to the model's
  // dtype); the others round the probabilities to the model's dtype first.
  bool float32_weights = false;
  int64_t shared_expert_size = 0;  // Qwen2-MoE's shared expert's inner width (0: none)
  bool shared_expert_gated = true;  // Qwen2-MoE's sigmoid gate on it (DeepSeek's shared experts have none)
  RouterScoring scoring = RouterScoring::softmax;
  // DeepSeek: the router's logits computed in float32 (x and R widened first), not in the model's dtype.
  bool float32_logits = false;
  // DeepSeek-V3: a per-expert bias (e_score_correction_bias, float32) added to the scores to choose the experts, not
  // to weight them.
  bool choice_bias = false;
  int64_t groups = 1;            // n_group (1: routing is not group-limited)
  int64_t groups_per_token = 1;  // topk_group
  double routed_scaling_factor = 1.0;  // DeepSeek's: multiplies the k weights (after any renormalisation)
  // Which layers have experts (Qwen's decoder_sparse_step and mlp_only_layers may leave some dense, with an MLP of
  // intermediate_size); empty in a dense model.
  std::vector<bool> layers;
  bool in_layer(int64_t layer) const {
    return layer >= 0 && static_cast<std::size_t>(layer) < layers.size() && layers[static_cast<std::size_t>(layer)];
  }
};

// DeepSeek's multi-head latent attention (MLA): queries through a low-rank bottleneck (q_a_proj [q_rank, D], an
// RMSNorm, q_b_proj [H (nope + rope), q_rank]) or one q_proj; keys and values from one compressed latent per token
// (kv_a_proj_with_mqa [kv_rank + rope, D]: the latent, normed, and a rope-sized key shared by every head), expanded
// per head by kv_b_proj [H (nope + v), kv_rank]. Each head's query and key are `nope` dimensions without RoPE then
// `rope` rotated ones; its value has `v` dimensions. The bottleneck norms' epsilon is 1e-6 whatever rms_norm_eps is.
struct LatentAttentionConfig {
  int64_t q_rank = 0;     // q_lora_rank (0: one q_proj, as DeepSeek-V2-Lite)
  int64_t kv_rank = 0;    // kv_lora_rank (0: not latent attention)
  int64_t nope_dim = 0;   // qk_nope_head_dim
  int64_t rope_dim = 0;   // qk_rope_head_dim
  int64_t v_dim = 0;      // v_head_dim
  bool defined() const { return kv_rank > 0; }
};

// Qwen3.5's Gated DeltaNet layers (gated_delta_net.h): Hk key heads of Dk and Hv value heads of Dv (Hk dividing
// Hv: each key head serves Hv / Hk consecutive value heads), a causal depthwise convolution of `conv_kernel` taps
// over the queries, keys and values.
struct DeltaNetConfig {
  int64_t key_heads = 0;       // Hk, linear_num_key_heads
  int64_t value_heads = 0;     // Hv, linear_num_value_heads
  int64_t key_head_dim = 0;    // Dk, linear_key_head_dim
  int64_t value_head_dim = 0;  // Dv, linear_value_head_dim
  int64_t conv_kernel = 0;     // linear_conv_kernel_dim
  int64_t key_width() const { return key_heads * key_head_dim; }        // Hk*Dk
  int64_t value_width() const { return value_heads * value_head_dim; }  // Hv*Dv
  int64_t conv_width() const { return 2 * key_width() + value_width(); }
};

// Granite-4.0's Mamba-2 layers (mamba2.h): an inner width I = `heads` x `head_dim` (mamba_expand x D), `groups`
// groups of B and C of `state` numbers each (a group serving heads / groups consecutive heads), a causal depthwise
// convolution of `conv_kernel` taps over x, B and C, the scan computed in chunks of `chunk` tokens.
struct Mamba2Config {
  int64_t heads = 0;        // H, mamba_n_heads
  int64_t head_dim = 0;     // P, mamba_d_head
  int64_t groups = 0;       // G, mamba_n_groups
  int64_t state = 0;        // N, mamba_d_state
  int64_t conv_kernel = 0;  // K, mamba_d_conv
  int64_t chunk = 0;        // mamba_chunk_size
  bool conv_bias = true;    // mamba_conv_bias
  bool proj_bias = false;   // mamba_proj_bias: in_proj and out_proj with biases
  // time_step_limit: each step dt clamped to [min, max] after its softplus.
  double dt_min = 0.0;
  double dt_max = INFINITY;
  bool defined() const { return heads > 0; }
  int64_t inner() const { return heads * head_dim; }                   // I
  int64_t conv_width() const { return inner() + 2 * groups * state; }  // x, B and C: I + 2 G N
  int64_t in_width() const { return inner() + conv_width() + heads; }  // the gate z, x B C, and dt: 2 I + 2 G N + H
};

struct ModelConfig {
  Architecture architecture = Architecture::llama;
  int64_t hidden_size = 0;          // D
  int64_t intermediate_size = 0;    // F, the MLP's inner width
  int64_t num_layers = 0;           // L
  int64_t num_heads = 0;            // H, query heads
  int64_t num_kv_heads = 0;         // Hkv, key/value heads (H % Hkv == 0; H / Hkv queries share one kv head)
  int64_t head_dim = 0;             // Dh (D / H unless the config sets it; Qwen3's default is 128, Gemma's 256;
                                    // DeepSeek's: a query's and a key's, nope + rope)
  int64_t rotary_dim = 0;           // the first dimensions of each head that RoPE rotates: Dh, or less (Phi-4, GLM;
                                    // DeepSeek: rope, its last ones)
  int64_t vocab_size = 0;           // V
  int64_t max_position_embeddings = 0;
  // Mistral v0.1's window, Gemma-2's, Gemma-3's and OLMo-3's on their sliding layers, Qwen's with use_sliding_window
  // on the layers from max_window_layers on: a query of those layers attends to the keys fewer than `sliding_window`
  // positions back (0: no layer slides).
  int64_t sliding_window = 0;
  // Which layers are sliding-window layers (with a window: layer_types, or every layer for Mistral); Gemma-3 and
  // OLMo-3 also give them local_rope. Empty when none is.
  std::vector<bool> sliding_layers;
  double rms_norm_eps = 1e-6;  // every norm's epsilon (Cohere's layer_norm_eps)
  RopeConfig rope;
  // SmolLM3's and Cohere-2's layers whose attention uses no position embedding at all (NoPE; SmolLM3: by default
  // every fourth; Cohere-2: its full-attention layers); empty when every layer rotates.
  std::vector<bool> nope_layers;
  bool rotates(int64_t layer) const {
    return layer < 0 || static_cast<std::size_t>(layer) >= nope_layers.size() ||
           !nope_layers[static_cast<std::size_t>(layer)];
  }
  // Gemma-3 and OLMo-3: the RoPE of their sliding-window layers (another theta, or no scaling), `rope` being their
  // full-attention layers'; unset elsewhere (every layer uses `rope`).
  std::optional<RopeConfig> local_rope;
  bool tie_word_embeddings = false;  // lm_head shares model.embed_tokens.weight (no lm_head.weight tensor)
  bool attention_bias = false;       // q/k/v biases (Qwen2: always); Llama's and Qwen3's also add o_proj's
  bool output_bias = false;          // o_proj bias (Llama or Qwen3 with attention_bias)
  bool mlp_bias = false;             // gate/up/down biases (Llama's mlp_bias)
  // Phi-3: q, k and v are one projection, qkv_proj (their outputs side by side).
  bool fused_qkv = false;
  // Phi-3 and GLM: gate and up are one projection, gate_up_proj (gate's half first).
  bool fused_gate_up = false;
  RopeStyle rope_style = RopeStyle::rotate_half;
  // Cohere: the norms are LayerNorms without a bias (x minus its mean, over its standard deviation, times the weight,
  // in float32 throughout), not RMSNorms; its query and key norms have a weight per head ([H, Dh], [Hkv, Dh]).
  bool layer_norms = false;
  // Cohere: attention and MLP read the same normed input and both add to the residual stream:
  // h = h + attention(norm(h)) + mlp(norm(h)).
  bool parallel_blocks = false;
  bool qk_norm = false;              // RMSNorm over Dh of every query and key head, before RoPE (Qwen3, Gemma-3)
  // OLMo-2: the query and key RMSNorms are over each token's whole query ([H*Dh]) and key ([Hkv*Dh]), before they
  // are split into heads (with qk_norm).
  bool qk_norm_whole = false;
  Activation activation = Activation::silu;
  // Gemma: embeddings multiplied by sqrt(D), rounded to the model's dtype as transformers rounds it.
  bool scaled_embeddings = false;
  // Gemma and OLMo-2: every RMSNorm multiplies by its weight in float32 before rounding to the model's dtype
  // (Llama's rounds first, then multiplies by w in the model's dtype).
  bool norms_scale_in_float32 = false;
  // Gemma: every RMSNorm scales by (1 + w) (with norms_scale_in_float32).
  bool unit_offset_norms = false;
  // Gemma-2 and GLM-4: an RMSNorm on the attention's output and one on the MLP's output before each residual addition
  // (Gemma-2's post_attention_layernorm and post_feedforward_layernorm, whose MLP input norm is then
  // pre_feedforward_layernorm; GLM-4's post_self_attn_layernorm and post_mlp_layernorm).
  bool output_norms = false;
  // false for OLMo-2, whose layers norm only their blocks' outputs (output_norms), not their inputs:
  // h = h + norm(attention(h)), h = h + norm(mlp(h)).
  bool input_norms = true;
  // Multiplies q k^T: Dh^-1/2 (also when 0, as in hand-made configs), or Gemma-2's query_pre_attn_scalar^-1/2
  // (DeepSeek: times YaRN's mscale(factor, mscale_all_dim)^2).
  double attention_scale = 0.0;
  // Gemma-2's soft caps: cap * tanh(x / cap) of the attention scores and of the final logits (0: none).
  double attention_softcap = 0.0;
  double logit_softcap = 0.0;
  // Granite's multipliers: of the embeddings, of what each block adds to the residual stream, and the divisor of the
  // logits (its attention_multiplier is attention_scale); 1 elsewhere.
  double embedding_multiplier = 1.0;
  double residual_multiplier = 1.0;
  double logits_scaling = 1.0;
  double logit_scale = 1.0;  // Cohere's: multiplies the logits

  // OLMoE's clip_qkv: queries, keys and values clamped to [-c, c] after their norms (0: none).
  double clip_qkv = 0.0;
  // gpt-oss: each head's softmax also spans a learned "sink" logit (self_attn.sinks [H]) that takes probability mass
  // and no value.
  bool attention_sinks = false;
  // Ministral-3's (Llama-4's) attention temperature: after RoPE, the query at position p is multiplied by
  // 1 + beta ln(1 + floor(p / length)) (computed in float32, then rounded to the model's dtype), which is 1 for the
  // first `length` positions and grows by steps past them (beta 0: no such scale).
  double query_scale_beta = 0.0;
  int64_t query_scale_length = 0;
  bool scales_queries() const { return query_scale_beta != 0.0; }
  // Qwen3.5: the query projection also gives a gate per query dimension ([H*2*Dh]: each head's query then its
  // gate), and the attention's output is multiplied by its sigmoid before o_proj.
  bool gated_attention = false;
  // Qwen3.5: the layers whose token mixer is a Gated DeltaNet (layer_types "linear_attention") instead of
  // attention; Granite-4.0: those whose mixer is a Mamba-2 layer (mamba.defined()); empty when none is. Such a model
  // reads each row of a batch as one sequence (no packed rows).
  std::vector<bool> linear_attention_layers;
  DeltaNetConfig delta_net;
  Mamba2Config mamba;
  bool is_linear_attention(int64_t layer) const {
    return layer >= 0 && static_cast<std::size_t>(layer) < linear_attention_layers.size() &&
           linear_attention_layers[static_cast<std::size_t>(layer)];
  }
  // Whether a token's output depends on the order of the tokens before it beyond what attention's pattern says (a
  // recurrent layer): then only layouts of one sequence per row are valid.
  bool recurrent() const { return !linear_attention_layers.empty(); }
  LatentAttentionConfig mla;  // DeepSeek's attention (mla.defined()); q/k/v/qkv and the query/key norms are unused
  MoeConfig moe;
  std::string dtype;                 // the checkpoint's dtype as the config names it ("bfloat16", ...); may be ""
  // transformers' fine-grained FP8 checkpoints (quantization_config's quant_method "fp8", fp8.h): the weights stored
  // as float8_e4m3fn are dequantized with their `weight_scale_inv` when loaded, one scale per block of fp8_block[0]
  // rows x fp8_block[1] columns ({0, 0}: one per tensor).
  bool fp8_weights = false;
  std::array<int64_t, 2> fp8_block{0, 0};
  // The language model of a vision-language checkpoint (Gemma3ForConditionalGeneration, model_type "gemma3";
  // Mistral3ForConditionalGeneration, "mistral3"): its tensors are named under the multimodal model's (see
  // tensor_naming.h), and so are its adapters' modules.
  bool multimodal = false;
};

// Parses config.json's JSON. `source` names the file in error messages. Throws abmll::InputError naming the source,
// the field and the value for an unsupported architecture, RoPE type or activation, sliding-window attention, a
// missing or mistyped field, or inconsistent sizes (non-positive, H not dividing D when head_dim is absent, Hkv not
// dividing H).
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source = "config.json");

// config.json's text as JSON, also where it holds the bare words Python's json module writes for non-finite floats
// (Infinity, -Infinity, NaN: not JSON, but in transformers 4.x's configs of Mamba-2 models, e.g. time_step_limit),
// read as the objects transformers 5 writes instead ({"__float__": "Infinity"}), which a field expecting a number
// refuses by name. Throws abmll::InputError naming `source` for text that is not JSON even so.
nlohmann::json parse_config_json(std::string_view text, const std::string& source);

// Reads `path`: a config.json, or a model folder holding one.
ModelConfig load_model_config(const std::filesystem::path& path);

}  // namespace abmll::model
