// Grouped-query self-attention of Llama / Qwen2 / Qwen3 / Mistral / Gemma / OLMo / Phi-3 / gpt-oss and the others:
// q/k/v projections (Phi-3: one fused; Qwen3.5: q's with an output gate beside it, sigmoid(gate) multiplying the
// attention's output before o), (Qwen3) RMSNorm of each query and key head, RoPE on q and k, causal + padding
// mask, softmax(q k^T / sqrt(Dh)) v through at::scaled_dot_product_attention (Gemma-2: another scale, and soft-capped
// scores through an unfused path; gpt-oss: a sink logit per head in each softmax, unfused too), and the output
// projection. Hkv key/value heads are each shared by H / Hkv query heads. DeepSeek's latent attention is
// latent_attention.h's.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/linear.h"
#include "model/model_config.h"

namespace abmll::model {

struct AttentionWeights {
  LinearWeights q;  // [H*Dh, D] (+ bias [H*Dh] for Qwen2)
  LinearWeights k;  // [Hkv*Dh, D]
  LinearWeights v;  // [Hkv*Dh, D]
  LinearWeights o;  // [D, H*Dh]
  LinearWeights qkv;  // Phi-3, instead of q, k and v: [(H + 2 Hkv)*Dh, D], q's rows first, then k's, then v's
  at::Tensor q_norm;  // [Dh] (OLMo-2: [H*Dh]), undefined without config.qk_norm
  at::Tensor k_norm;  // [Dh] (OLMo-2: [Hkv*Dh]), undefined without config.qk_norm
  at::Tensor sinks;   // [H], gpt-oss's sink logits (config.attention_sinks); otherwise undefined
  // Latent attention (config.mla, latent_attention.h), instead of q (or with q, without a query bottleneck), k, v:
  LinearWeights q_a;     // [q_rank, D]
  at::Tensor q_a_norm;   // [q_rank]
  LinearWeights q_b;     // [H*(nope + rope), q_rank]
  LinearWeights kv_a;    // [kv_rank + rope, D]
  at::Tensor kv_a_norm;  // [kv_rank]
  LinearWeights kv_b;    // [H*(nope + v), kv_rank]
};

// softmax(q k^T scale, masked) v by the cheapest kernel that computes it as the reference does: q [B, H, T, Dq],
// k [B, Hkv, T, Dq], v [B, Hkv, T, Dv] (Hkv dividing H; query head h reads kv head h / (H / Hkv)), pattern
// [B, 1, T, T] bool or undefined (causal) -> [B, H, T, Dv]. `softcap` > 0: Gemma-2's capped scores; `sinks` [H]
// (gpt-oss's, or undefined): each head's softmax also over its sink logit; both unfused.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& pattern,
                  double scale, double softcap, bool twice_differentiable, const at::Tensor& sinks = {});

// x [B, T, D], (cos, sin) [B, T, Dh] from rope_tables (undefined: no RoPE), pattern [B, 1, T, T] bool from
// attention_pattern or undefined for plain causal attention -> [B, T, D]. Each projection goes through linear() at
// (layer, q/k/v/o). `twice_differentiable` computes softmax(q k^T) v with the unfused math kernel, whose backward
// can itself be differentiated (the fused SDPA kernels' cannot); it keeps [B, H, T, T] attention weights for
// backward. `query_scale` [B, 1, T, 1] in x's dtype (Ministral-3's, query_scale()), or undefined: multiplies the
// rotated queries.
at::Tensor attention(const at::Tensor& x, const AttentionWeights& w, const ModelConfig& config, int64_t layer,
                     const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& pattern,
                     const LinearAdapter* adapter, bool twice_differentiable = false,
                     const at::Tensor& query_scale = {});

// Ministral-3's (Llama-4's) scale of each query, 1 + beta ln(1 + floor(p / length)) of its position p (config's
// query_scale_beta and query_scale_length), as transformers computes it: in float32, then rounded to `dtype`.
// positions [B, T] int64 -> [B, 1, T, 1] on positions' device.
at::Tensor query_scale(const at::Tensor& positions, const ModelConfig& config, at::ScalarType dtype);

}  // namespace abmll::model
