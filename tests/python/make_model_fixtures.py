"""Tiny random Llama / Qwen2 / Qwen3 / Mistral / Gemma / Gemma-2 / Gemma-3 / OLMo-2 / OLMo-3 / Phi-3 / Granite / Cohere
/ Cohere-2 / GLM / GLM-4 / SmolLM3 / Mixtral / Qwen2-MoE / Qwen3-MoE / OLMoE / GraniteMoE / DeepSeek-V2 / DeepSeek-V3
/ GLM-4.7-Flash / GLM-4.5 / gpt-oss / Apertus / Ministral / EXAONE-4 / Seed-OSS / Ministral-3 / Qwen3.5 / Qwen3.5-MoE
/ Granite-4.0 checkpoints and their transformers logits, for tests/python/test_model_parity.py.

Each fixture is a model folder written by transformers' save_pretrained (safetensors, float32) plus
reference.safetensors holding, for fixed token ids:
  single_ids [T], single_logits [T, V]                   one unpadded sequence (transformers' default positions)
  batch_ids [2, T], batch_mask [2, T]                    sequence A and a shorter B, right-padded
  right_logits [2, T, V]                                 transformers with the mask and its default positions
  left_ids, left_mask [2, T], left_logits [2, T, V]      the same, left-padded, with position_ids passed explicitly
                                                         as (cumsum(mask) - 1).clamp(0), which is what abmll does
                                                         (and generate() does); transformers' plain forward would
                                                         number the padding columns too.
  bf16_single_logits [T, V]                              (BF16_FIXTURES only) the model cast to bfloat16
The llama3 fixture also gets a tokenizer.json: byte-level BPE over the 256 byte tokens (no merges), to test --text.

Usage: make_model_fixtures.py OUT_DIR [NAME ...]   (all fixtures when no name is given)
"""
import pathlib
import sys

import torch
from safetensors.torch import save_file
from transformers import (ApertusConfig, ApertusForCausalLM, Cohere2Config, Cohere2ForCausalLM, CohereConfig,
                          CohereForCausalLM, DeepseekV2Config, DeepseekV2ForCausalLM, DeepseekV3Config,
                          DeepseekV3ForCausalLM, Exaone4Config, Exaone4ForCausalLM, Gemma2Config, Gemma2ForCausalLM,
                          Gemma3ForCausalLM, Gemma3TextConfig, GemmaConfig, GemmaForCausalLM, Glm4Config,
                          Glm4ForCausalLM, Glm4MoeConfig, Glm4MoeForCausalLM, Glm4MoeLiteConfig,
                          Glm4MoeLiteForCausalLM, GlmConfig, GlmForCausalLM, GptOssConfig, GptOssForCausalLM,
                          GraniteConfig, GraniteForCausalLM, GraniteMoeConfig, GraniteMoeForCausalLM,
                          GraniteMoeHybridConfig, GraniteMoeHybridForCausalLM, LlamaConfig,
                          LlamaForCausalLM, Ministral3Config, Ministral3ForCausalLM, MinistralConfig,
                          MinistralForCausalLM, MistralConfig, MistralForCausalLM,
                          MixtralConfig, MixtralForCausalLM, Olmo2Config, Olmo2ForCausalLM, Olmo3Config,
                          Olmo3ForCausalLM, OlmoeConfig, OlmoeForCausalLM, Phi3Config, Phi3ForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, Qwen2MoeConfig, Qwen2MoeForCausalLM, Qwen3Config, Qwen3ForCausalLM,
                          Qwen3MoeConfig, Qwen3MoeForCausalLM, Qwen3_5ForCausalLM, Qwen3_5MoeForCausalLM,
                          Qwen3_5MoeTextConfig, Qwen3_5TextConfig, SeedOssConfig, SeedOssForCausalLM, SmolLM3Config,
                          SmolLM3ForCausalLM)

SIZES = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, vocab_size=256,
             initializer_range=0.1, rms_norm_eps=1e-6, max_position_embeddings=256)

# name -> (model class, config, save_pretrained keyword arguments)
FIXTURES = {
    # Llama-3 shape: GQA ratio 2, theta 500000, untied.
    "llama3": (LlamaForCausalLM, lambda: LlamaConfig(**SIZES, num_key_value_heads=2, rope_theta=500000.0), {}),
    # Llama-3.1 RoPE scaling. original_max_position_embeddings=64 with theta 10000 and Dh=16 puts the wavelengths in
    # all three bands (kept < 16 <= interpolated <= 64 < divided by factor).
    "llama31": (LlamaForCausalLM, lambda: LlamaConfig(
        **SIZES, num_key_value_heads=2, rope_theta=10000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64}), {}),
    # Qwen2: q/k/v biases, tied embeddings, no GQA (ratio 1).
    "qwen2_tied": (Qwen2ForCausalLM, lambda: Qwen2Config(
        **SIZES, num_key_value_heads=4, tie_word_embeddings=True, rope_theta=1000000.0), {}),
    # Qwen2 with GQA ratio 4 (one kv head), untied.
    "qwen2_gqa": (Qwen2ForCausalLM, lambda: Qwen2Config(**SIZES, num_key_value_heads=1, tie_word_embeddings=False),
                  {}),
    # Qwen3: RMSNorm of each query and key head before RoPE, head_dim 24 (not hidden / heads = 16), GQA ratio 2,
    # tied embeddings as in Qwen3-0.6B to 4B.
    "qwen3": (Qwen3ForCausalLM, lambda: Qwen3Config(
        **SIZES, num_key_value_heads=2, head_dim=24, tie_word_embeddings=True, rope_theta=1000000.0), {}),
    # Qwen3 with attention_bias (biases on q, k, v and o), GQA ratio 4, untied, head_dim = hidden / heads.
    "qwen3_bias": (Qwen3ForCausalLM, lambda: Qwen3Config(
        **SIZES, num_key_value_heads=1, head_dim=16, attention_bias=True, tie_word_embeddings=False), {}),
    # Mistral without sliding windows (v0.2 on): Llama's math under another name, GQA ratio 2.
    "mistral": (MistralForCausalLM, lambda: MistralConfig(**SIZES, num_key_value_heads=2, sliding_window=None), {}),
    # Mistral v0.1's sliding window, as long as SEQ_A: every sequence here fits in it.
    "mistral_v01": (MistralForCausalLM, lambda: MistralConfig(**SIZES, num_key_value_heads=2, sliding_window=11), {}),
    # Ministral-8B's form: Mistral's layers, those layer_types names sliding (here layer 0, a window of 11).
    "ministral": (MinistralForCausalLM, lambda: MinistralConfig(
        **SIZES, num_key_value_heads=2, head_dim=16, sliding_window=11,
        layer_types=["sliding_attention", "full_attention"]), {}),
    # Ministral-3's form: Mistral's layers, YaRN, and queries scaled by 1 + 0.1 ln(1 + floor(p / 4)) at position p
    # (the releases' 16384 positions brought down to 4, so that these sequences reach three steps of it).
    "ministral3": (Ministral3ForCausalLM, lambda: Ministral3Config(
        **SIZES, num_key_value_heads=2, head_dim=16,
        rope_parameters={"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 16.0,
                         "original_max_position_embeddings": 4, "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0,
                         "mscale_all_dim": 1.0, "llama_4_scaling_beta": 0.1}), {}),
    # Qwen3.5: a Gated DeltaNet layer (2 key heads of 8 serving 4 value heads of 12, 4 taps) then a full-attention
    # layer (gated output, (1 + w) head norms, RoPE on a quarter of each head, biases on q, k, v and o).
    "qwen3_5": (Qwen3_5ForCausalLM, lambda: Qwen3_5TextConfig(
        **SIZES, num_key_value_heads=2, head_dim=16, attention_bias=True,
        layer_types=["linear_attention", "full_attention"], linear_num_key_heads=2, linear_num_value_heads=4,
        linear_key_head_dim=8, linear_value_head_dim=12, linear_conv_kernel_dim=4,
        rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                         "mrope_section": [1, 1, 0], "mrope_interleaved": True}), {}),
    # Qwen3.5-MoE: Qwen3.5's two kinds of layers, each with 8 experts of width 16, 2 per token renormalised, and a
    # gated shared expert of width 24.
    "qwen3_5_moe": (Qwen3_5MoeForCausalLM, lambda: Qwen3_5MoeTextConfig(
        **{k: v for k, v in SIZES.items() if k != "intermediate_size"}, num_key_value_heads=2, head_dim=16,
        layer_types=["linear_attention", "full_attention"], linear_num_key_heads=2, linear_num_value_heads=4,
        linear_key_head_dim=8, linear_value_head_dim=12, num_experts=8, num_experts_per_tok=2,
        moe_intermediate_size=16, shared_expert_intermediate_size=24,
        rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25}), {}),
    # Granite-4.0-H: a Mamba-2 layer (8 heads of 16, 2 groups of B and C of 16, 4 taps, chunks of 4 tokens so that
    # the 11 tokens span three) then an attention layer without RoPE; Granite's multipliers; the shared MLP as the
    # MLP. (in_proj's and out_proj's biases: test_granite4.py.)
    "granite4": (GraniteMoeHybridForCausalLM, lambda: GraniteMoeHybridConfig(
        **SIZES, num_key_value_heads=2, layer_types=["mamba", "attention"], position_embedding_type=None,
        num_local_experts=0, shared_intermediate_size=80, mamba_n_heads=8, mamba_n_groups=2, mamba_d_state=16,
        mamba_d_conv=4, mamba_chunk_size=4, embedding_multiplier=2.0,
        residual_multiplier=0.5, attention_multiplier=0.2, logits_scaling=1.5), {}),
    # Granite-4.0 (micro, 1b, 350m): attention only, with RoPE and attention biases.
    "granite4_dense": (GraniteMoeHybridForCausalLM, lambda: GraniteMoeHybridConfig(
        **SIZES, num_key_value_heads=2, layer_types=["attention", "attention"], position_embedding_type="rope",
        attention_bias=True, num_local_experts=0, shared_intermediate_size=80, embedding_multiplier=2.0,
        attention_multiplier=0.2, logits_scaling=1.5), {}),
    # Granite-4.0-H-Tiny and -Small: an attention layer with RoPE then a Mamba-2 layer (one group), each with
    # GraniteMoE's experts (8 of width 16, 2 per token) beside the shared MLP.
    "granite4_moe": (GraniteMoeHybridForCausalLM, lambda: GraniteMoeHybridConfig(
        **dict(SIZES, intermediate_size=16), num_key_value_heads=2, layer_types=["attention", "mamba"],
        position_embedding_type="rope", num_local_experts=8, num_experts_per_tok=2, shared_intermediate_size=24,
        mamba_n_heads=4, mamba_d_state=8, mamba_chunk_size=8, residual_multiplier=0.5), {}),
    # Qwen2 with use_sliding_window: a window as long as SEQ_A on layer 1 (from max_window_layers on).
    "qwen2_window": (Qwen2ForCausalLM, lambda: Qwen2Config(
        **SIZES, num_key_value_heads=2, use_sliding_window=True, sliding_window=11, max_window_layers=1), {}),
    # Gemma: embeddings times sqrt(D), (1 + w) norms, GeGLU (the legacy "gelu" spelling, read as its tanh
    # approximation), head_dim 24 (not hidden / heads = 16), GQA ratio 2, tied embeddings.
    "gemma": (GemmaForCausalLM, lambda: GemmaConfig(
        **SIZES, num_key_value_heads=2, head_dim=24, hidden_act="gelu"), {}),
    # Gemma-2: norms on the attention's and the MLP's outputs, query_pre_attn_scalar != head_dim, soft caps small
    # enough to bend these weights' scores and logits (the released models' 50 and 30 barely would), a sliding
    # window on layer 0 as long as SEQ_A, hidden 80 (sqrt(80) is not a bfloat16 number), attention biases.
    "gemma2": (Gemma2ForCausalLM, lambda: Gemma2Config(
        **dict(SIZES, hidden_size=80), num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24,
        attn_logit_softcapping=1.0, final_logit_softcapping=2.0, sliding_window=11, attention_bias=True), {}),
    # Gemma-3: (1 + w) query and key head norms, no soft caps, layer 0 sliding (window as long as SEQ_A) with its own
    # RoPE theta, layer 1 full with linear RoPE scaling (factor 4), query_pre_attn_scalar != head_dim.
    "gemma3": (Gemma3ForCausalLM, lambda: Gemma3TextConfig(
        **SIZES, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=20, sliding_window=11,
        layer_types=["sliding_attention", "full_attention"],
        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1000000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}), {}),
    # OLMo-2: norms on the attention's and the MLP's outputs only, query and key norms over all heads at once, norms
    # scaling before rounding, attention biases (the released models have none), GQA ratio 2.
    "olmo2": (Olmo2ForCausalLM, lambda: Olmo2Config(
        **SIZES, num_key_value_heads=2, rope_theta=500000.0, attention_bias=True), {}),
    # OLMo-3: OLMo-2's layers, layer 0 sliding (a window as long as SEQ_A) with its own RoPE, layer 1 full with YaRN
    # (its range within the head's dimensions, attention_factor given).
    "olmo3": (Olmo3ForCausalLM, lambda: Olmo3Config(
        **SIZES, num_key_value_heads=2, sliding_window=11, layer_types=["sliding_attention", "full_attention"],
        rope_parameters={"full_attention": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 500000.0,
                                            "original_max_position_embeddings": 4096, "attention_factor": 1.2},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}), {}),
    # Qwen2 with YaRN (rope_scaling as Qwen2.5's long-context instructions give it): the ramp between dimensions 2.6
    # and 5.6 of 8 left fractional (truncate false), attention_factor from mscale and mscale_all_dim.
    "qwen2_yarn": (Qwen2ForCausalLM, lambda: Qwen2Config(
        **SIZES, num_key_value_heads=2, rope_theta=10000.0,
        rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096,
                      "truncate": False, "mscale": 1.0, "mscale_all_dim": 0.5}), {}),
    # Phi-3: q, k and v one projection, gate and up another, a window as long as SEQ_A on every layer (Phi-3 mini
    # 4k's is 2047), GQA ratio 2 (the mini models have none, Phi-4 has), theta 250000 (Phi-4's).
    "phi3": (Phi3ForCausalLM, lambda: Phi3Config(
        **SIZES, num_key_value_heads=2, sliding_window=11, rope_theta=250000.0, pad_token_id=0, bos_token_id=1,
        eos_token_id=2), {}),
    # Phi-4-mini's RoPE: three quarters of each head rotated (12 of 16), LongRoPE factors (short ones while positions
    # stay below an original context of 8, long ones past it: SEQ_A reaches past it, SEQ_B alone does not), tied.
    "phi3_longrope": (Phi3ForCausalLM, lambda: Phi3Config(
        **SIZES, num_key_value_heads=2, partial_rotary_factor=0.75, original_max_position_embeddings=8,
        rope_scaling={"rope_type": "longrope", "short_factor": [1.0, 1.2, 1.5, 2.0, 3.0, 5.0],
                      "long_factor": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]},
        tie_word_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2), {}),
    # Granite (3.x): Llama's layers with multipliers (the 8B model's: embeddings x12, residual additions x0.22,
    # attention scale 1/128 here 1/16 for head_dim 16, logits / 16), tied, attention and MLP biases.
    "granite": (GraniteForCausalLM, lambda: GraniteConfig(
        **SIZES, num_key_value_heads=2, embedding_multiplier=12.0, residual_multiplier=0.22,
        attention_multiplier=0.0625, logits_scaling=16.0, tie_word_embeddings=True, attention_bias=True,
        mlp_bias=True, pad_token_id=0, bos_token_id=1, eos_token_id=2), {}),
    # Cohere (Aya Expanse 8B, Command R): attention and MLP side by side on one LayerNorm, per-head LayerNorms of
    # queries and keys (use_qk_norm, as Command R+), RoPE on adjacent pairs in float32, logits times 0.25, tied,
    # attention biases.
    "cohere": (CohereForCausalLM, lambda: CohereConfig(
        **{k: v for k, v in SIZES.items() if k != "rms_norm_eps"}, num_key_value_heads=2, use_qk_norm=True,
        logit_scale=0.25, layer_norm_eps=1e-5, attention_bias=True, pad_token_id=0, bos_token_id=1,
        eos_token_id=2), {}),
    # Cohere-2 (Command R7B): Cohere's layers, layer 0 sliding (a window as long as SEQ_A) and rotating, layer 1 full
    # and without RoPE, no query/key norms.
    "cohere2": (Cohere2ForCausalLM, lambda: Cohere2Config(
        **{k: v for k, v in SIZES.items() if k != "rms_norm_eps"}, num_key_value_heads=2, sliding_window=11,
        layer_types=["sliding_attention", "full_attention"], logit_scale=0.25, pad_token_id=0, bos_token_id=1,
        eos_token_id=2), {}),
    # GLM (glm-4-9b-chat-hf): q, k and v with biases, gate and up one projection, RoPE on adjacent pairs of the first
    # half of each head (partial_rotary_factor's default, 0.5), GQA ratio 2.
    "glm": (GlmForCausalLM, lambda: GlmConfig(**SIZES, num_key_value_heads=2, head_dim=16, pad_token_id=0,
                                               eos_token_id=2), {}),
    # GLM-4 (GLM-4-9B-0414): GLM's layers with norms on the attention's and the MLP's outputs, a rotated share of
    # 0.75 given at the top level, theta 500000.
    "glm4": (Glm4ForCausalLM, lambda: Glm4Config(**SIZES, num_key_value_heads=2, head_dim=16, pad_token_id=0,
                                                  eos_token_id=2, partial_rotary_factor=0.75, rope_theta=500000.0),
             {}),
    # SmolLM3: Llama's layers, layer 1 without RoPE (no_rope_layer_interval 2; the 3B's is 4) and sliding (a window as
    # long as SEQ_A), tied.
    "smollm3": (SmolLM3ForCausalLM, lambda: SmolLM3Config(
        **SIZES, num_key_value_heads=2, no_rope_layer_interval=2, use_sliding_window=True, sliding_window=11,
        rope_theta=5000000.0, pad_token_id=0, bos_token_id=1, eos_token_id=2), {}),
    # Mixtral: Mistral's layers with 4 experts, 2 per token (the 8x7B has 8), probabilities renormalised over the two
    # and kept in float32 for the weighting.
    "mixtral": (MixtralForCausalLM, lambda: MixtralConfig(
        **SIZES, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, sliding_window=None), {}),
    # Qwen2-MoE: 4 experts of width 32, 2 per token, probabilities not renormalised, a shared expert of width 48 with
    # its sigmoid gate; layer 1 a dense MLP (mlp_only_layers), q/k/v biases.
    "qwen2_moe": (Qwen2MoeForCausalLM, lambda: Qwen2MoeConfig(
        **SIZES, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
        shared_expert_intermediate_size=48, mlp_only_layers=[1]), {}),
    # Qwen3-MoE: Qwen3's head norms, head_dim 24, 4 experts of width 32, 3 per token renormalised (norm_topk_prob,
    # as in Qwen3-30B-A3B).
    "qwen3_moe": (Qwen3MoeForCausalLM, lambda: Qwen3MoeConfig(
        **SIZES, num_key_value_heads=2, head_dim=24, num_experts=4, num_experts_per_tok=3, moe_intermediate_size=32,
        norm_topk_prob=True), {}),
    # OLMoE: norms over whole queries and keys (Llama's rounding), q, k and v clipped at 1.5 (which binds here), 4
    # experts, 2 per token, not renormalised.
    "olmoe": (OlmoeForCausalLM, lambda: OlmoeConfig(
        **SIZES, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, clip_qkv=1.5, pad_token_id=1,
        eos_token_id=2), {}),
    # GraniteMoE (3.x 1B-A400M, 3B-A800M): Granite's multipliers, 4 experts of width 32 stored as two 3-D tensors per
    # layer, 2 per token weighted by the softmax of their logits, tied.
    "granitemoe": (GraniteMoeForCausalLM, lambda: GraniteMoeConfig(
        **dict(SIZES, intermediate_size=32), num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
        embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.0625, logits_scaling=6.0,
        tie_word_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2), {}),
    # DeepSeek-V2-Lite's shape: latent attention with one q_proj (no query bottleneck), keys and values from a latent
    # of 32 (heads' unrotated 16 + rotated 8 query/key dimensions, values of 12), biases on kv_a_proj_with_mqa and
    # o_proj, YaRN (factor 4) with mscale_all_dim scaling the attention; layer 0 dense, layer 1 with 4 experts of
    # width 32 in 2 groups, 2 per token from the best group ("group_limited_greedy"), weights x1.5, 2 shared experts.
    "deepseek_v2": (DeepseekV2ForCausalLM, lambda: DeepseekV2Config(
        **SIZES, q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=12,
        attention_bias=True, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=2,
        first_k_dense_replace=1, topk_method="group_limited_greedy", n_group=2, topk_group=1,
        routed_scaling_factor=1.5,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                         "original_max_position_embeddings": 64, "mscale": 1.0, "mscale_all_dim": 0.707}), {}),
    # DeepSeek-V3's (Moonlight's) shape: the query bottleneck (48, normed), interleaved RoPE in the model's dtype; 8
    # experts of width 16 in 4 groups, 3 per token from the 2 groups with the best pairs of sigmoid scores plus
    # e_score_correction_bias (random here), renormalised, x2.5; one shared expert; layer 0 dense. rms_norm_eps 1e-3
    # (the bottlenecks' norms keep 1e-6); num_key_value_heads is left at the config's default (128, unused).
    "deepseek_v3": (DeepseekV3ForCausalLM, lambda: DeepseekV3Config(
        **dict(SIZES, rms_norm_eps=1e-3), q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=12,
        n_routed_experts=8, num_experts_per_tok=3, moe_intermediate_size=16, n_shared_experts=1,
        first_k_dense_replace=1, n_group=4, topk_group=2, routed_scaling_factor=2.5, norm_topk_prob=True), {}),
    # GLM-4.7-Flash (glm4_moe_lite): DeepSeek-V3's layers with GLM's defaults, the dense layer named by mlp_layer_types
    # (layer 1 here, layer 0 sparse), one group, rms_norm_eps 1e-5 by default, rotate_half's halves (rope_interleave
    # false), 6 experts of width 16, 2 per token, x1.8.
    "glm4_moe_lite": (Glm4MoeLiteForCausalLM, lambda: Glm4MoeLiteConfig(
        **{k: v for k, v in SIZES.items() if k != "rms_norm_eps"}, num_key_value_heads=4, q_lora_rank=40,
        kv_lora_rank=24, qk_nope_head_dim=12, qk_rope_head_dim=8, v_head_dim=20, n_routed_experts=6,
        num_experts_per_tok=2, moe_intermediate_size=16, mlp_layer_types=["sparse", "dense"], rope_interleave=False),
        {}),
    # gpt-oss (20B, 120B): biases on q, k, v and o, a sink logit per head, layer 0 sliding (a window of 6, which binds)
    # and layer 1 full, YaRN (its factor 32 over an original 64 here, truncate false), 4 experts of width 32 with
    # biases (gate and up alternating in one input-major tensor), 2 per token weighted by the softmax of their biased
    # router logits, the clamped SwiGLU (limit 1.5 here, which binds; alpha 1.702).
    "gpt_oss": (GptOssForCausalLM, lambda: GptOssConfig(
        **dict(SIZES, intermediate_size=32, rms_norm_eps=1e-5), num_key_value_heads=2, head_dim=16,
        num_local_experts=4, num_experts_per_tok=2, sliding_window=6, swiglu_limit=1.5,
        rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                         "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 64}), {}),
    # Apertus (8B, 70B): Llama's attention with RMSNorms of each query and key head, norms named attention_layernorm
    # and feedforward_layernorm, an ungated MLP with the xIELU activation (its four parameters per layer moved off
    # their initial values below), ApertusConfig's default RoPE (llama3, theta 1.2e7, factor 8 over 8192).
    "apertus": (ApertusForCausalLM, lambda: ApertusConfig(**dict(SIZES, rms_norm_eps=1e-5), num_key_value_heads=2),
                {}),
    # EXAONE-4 (32B, 1.2B): OLMo-2's output-only norms (rounding as Llama's), an RMSNorm over each query and key head,
    # layers 0 to 2 sliding (a window of 6, which binds) and rotating, layer 3 full and without RoPE; llama3 RoPE.
    "exaone4": (Exaone4ForCausalLM, lambda: Exaone4Config(
        **dict(SIZES, num_hidden_layers=4, rms_norm_eps=1e-5), num_key_value_heads=2, head_dim=16, sliding_window=6,
        rope_parameters={"rope_type": "llama3", "rope_theta": 1e6, "factor": 16.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64}), {}),
    # Seed-OSS (36B): biases on q, k and v (attention_bias), on o (attention_out_bias, false in the release) and on the
    # MLP (mlp_bias, false in the release): all three here; head_dim 128 by default (here 24).
    "seed_oss": (SeedOssForCausalLM, lambda: SeedOssConfig(
        **SIZES, num_key_value_heads=2, head_dim=24, attention_out_bias=True, mlp_bias=True, rope_theta=1e7), {}),
    # GLM-4.5 (355B-A32B, Air 106B-A12B): biases on q, k and v, RMSNorms of each query and key head (use_qk_norm),
    # RoPE on the first half of each head (rotate_half's halves), layer 0 dense, layer 1 with DeepSeek-V3's experts:
    # 8 in 2 groups, 2 per token from the best group by sigmoid scores plus their bias, renormalised, x2, one shared.
    "glm4_moe": (Glm4MoeForCausalLM, lambda: Glm4MoeConfig(
        **dict(SIZES, rms_norm_eps=1e-5), num_key_value_heads=2, head_dim=16, attention_bias=True, use_qk_norm=True,
        n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=16, n_shared_experts=1,
        first_k_dense_replace=1, n_group=2, topk_group=1, routed_scaling_factor=2.0), {}),
    # Llama saved in shards (model.safetensors.index.json + several files).
    "llama3_sharded": (LlamaForCausalLM, lambda: LlamaConfig(**SIZES, num_key_value_heads=2, rope_theta=500000.0),
                       {"max_shard_size": "40KB"}),
}

# Fixtures whose reference also holds bfloat16 logits.
BF16_FIXTURES = ["llama3", "qwen3", "gemma2", "gemma3", "olmo2", "olmo3", "phi3", "granite", "cohere", "glm4",
                 "mixtral", "qwen3_moe", "granitemoe", "deepseek_v2", "deepseek_v3", "glm4_moe_lite",
                 "gpt_oss", "apertus", "exaone4", "seed_oss", "glm4_moe", "ministral3", "qwen3_5", "qwen3_5_moe",
                 "granite4", "granite4_moe"]


def write_byte_tokenizer(folder: pathlib.Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=256, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(["hello world"], trainer)
    tok.save(str(folder / "tokenizer.json"))


SEQ_A = [1, 17, 200, 45, 3, 99, 255, 0, 128, 64, 7]
SEQ_B = [5, 250, 33, 8, 142]


def build(name: str, out: pathlib.Path) -> pathlib.Path:
    cls, make_config, save_kwargs = FIXTURES[name]
    torch.manual_seed(sum(map(ord, name)))
    model = cls(make_config()).to(torch.float32).eval()
    # The default init leaves biases at 0 and norm weights at 1, which would hide a missing bias or norm weight.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("bias") or "norm" in pname or ".act_fn.alpha_" in pname:  # (Apertus's slopes)
                p.add_(torch.randn_like(p) * 0.2)
            if pname.endswith((".A_log", ".D")):  # a Mamba-2 layer's decays and skip scales
                p.add_(torch.randn_like(p) * 0.2)
        for bname, b in model.named_buffers():  # DeepSeek-V3's router bias, Apertus's beta (saved buffers)
            if bname.endswith("e_score_correction_bias") or bname.endswith(".act_fn.beta"):
                b.add_(torch.randn_like(b) * 0.2)
    folder = out / name
    model.save_pretrained(folder, safe_serialization=True, **save_kwargs)

    t = len(SEQ_A)
    pad = t - len(SEQ_B)
    single = torch.tensor([SEQ_A])
    right_ids = torch.tensor([SEQ_A, SEQ_B + [0] * pad])
    right_mask = torch.tensor([[1] * t, [1] * len(SEQ_B) + [0] * pad])
    left_ids = torch.tensor([SEQ_A, [0] * pad + SEQ_B])
    left_mask = torch.tensor([[1] * t, [0] * pad + [1] * len(SEQ_B)])
    left_positions = (left_mask.cumsum(-1) - 1).clamp(min=0)
    ref = {}
    with torch.no_grad():
        ref["single_ids"] = single[0]
        ref["single_logits"] = model(input_ids=single).logits[0]
        ref["batch_ids"], ref["batch_mask"] = right_ids, right_mask
        ref["right_logits"] = model(input_ids=right_ids, attention_mask=right_mask).logits
        ref["left_ids"], ref["left_mask"] = left_ids, left_mask
        ref["left_logits"] = model(input_ids=left_ids, attention_mask=left_mask, position_ids=left_positions).logits
        if name == "llama3":
            write_byte_tokenizer(folder)
        if name in BF16_FIXTURES:
            ref["bf16_single_logits"] = model.to(torch.bfloat16)(input_ids=single).logits[0].float()
    save_file({k: v.contiguous() for k, v in ref.items()}, str(folder / "reference.safetensors"))
    return folder


def main(argv):
    out = pathlib.Path(argv[1])
    for name in argv[2:] or FIXTURES:
        print(build(name, out))


if __name__ == "__main__":
    main(sys.argv)
