// Grouped-query self-attention (see attention.h).
#include "model/attention.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/_scaled_dot_product_attention_math.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/floor.h>
#include <ATen/ops/log.h>
#include <ATen/ops/logical_not.h>
#include <ATen/ops/masked_fill.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/max.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/scaled_dot_product_attention.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "model/padding.h"
#include "model/layer_norm.h"
#include "model/rope.h"
#include "model/soft_cap.h"

namespace abmll::model {
namespace {

// [B, Hkv, T, Dh] -> [B, Hkv*n, T, Dh], each kv head repeated n times in place (head h of the result is kv head
// h / n), as transformers' repeat_kv. Explicit where SDPA's enable_gqa is not taken by every kernel: with a mask,
// for the unfused math kernel, and for 32-bit floats on a GPU.
at::Tensor repeat_kv(const at::Tensor& x, int64_t n) {
  if (n == 1) return x;
  const int64_t b = x.size(0), h = x.size(1), t = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, h, n, t, d}).reshape({b, h * n, t, d});
}

// scores [B, H, T, T] with every key `pattern` ([B, 1, T, T] bool; undefined: causal) forbids at -inf (every row
// keeps an entry: padding.h).
at::Tensor masked(const at::Tensor& scores, const at::Tensor& pattern) {
  const at::Tensor allowed = pattern.defined() ? pattern : causal_pattern(scores.size(-2), scores.device());
  return scores.masked_fill(allowed.logical_not(), -INFINITY);
}

// Gemma-2's attention with soft-capped scores, as transformers' eager attention computes it: scores in q's dtype,
// capped, masked, softmax in float32 (float64 for float64) rounded back to q's dtype, then the weighted values. No SDPA
// kernel caps scores, so this is unfused: it keeps [B, H, T, T] scores and weights for backward, and is differentiable
// twice. q [B, H, T, Dh], k and v [B, H, T, Dh] (kv heads repeated), pattern [B, 1, T, T] bool or undefined (causal).
at::Tensor softcapped_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& pattern, double scale, double cap) {
  const at::Tensor scores = masked(soft_cap(at::matmul(q, k.transpose(-2, -1)) * scale, cap), pattern);
  // float32 (float64 stays float64: the gradient checks)
  const at::ScalarType softmax_type = at::promote_types(q.scalar_type(), at::kFloat);
  return at::matmul(at::softmax(scores, -1, softmax_type).to(q.scalar_type()), v);
}

// gpt-oss's attention with sinks, as its eager attention computes it (no fused kernel takes sinks): masked scores in
// q's dtype and each head's sink logit side by side, less their maximum, softmax in that dtype, the sink's share
// dropped, then the weighted values. Keeps [B, H, T, T + 1] weights for backward; differentiable twice. q [B, H, T,
// Dh], k and v [B, H, T, Dh] (kv heads repeated), sinks [H].
at::Tensor sink_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& pattern,
                          double scale, const at::Tensor& sinks) {
  const at::Tensor scores = masked(at::matmul(q, k.transpose(-2, -1)) * scale, pattern);  // [B, H, T, T]
  const at::Tensor sink = sinks.to(scores.scalar_type()).view({1, -1, 1, 1}).expand({q.size(0), -1, q.size(2), 1});
  at::Tensor combined = at::cat({scores, sink}, -1);  // [B, H, T, T + 1]
  combined = combined - std::get<0>(combined.max(-1, /*keepdim=*/true));
  const at::Tensor weights = at::softmax(combined, -1).narrow(-1, 0, k.size(2));
  return at::matmul(weights.to(v.scalar_type()), v);
}

}  // namespace

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& pattern,
                  double scale, double softcap, bool twice_differentiable, const at::Tensor& sinks) {
  const int64_t groups = q.size(1) / k.size(1);
  const bool causal = !pattern.defined();
  if (sinks.defined()) return sink_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), pattern, scale, sinks);
  if (softcap > 0.0)
    return softcapped_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), pattern, scale, softcap);
  if (twice_differentiable) {
    // The math kernel adds its mask to the scores: a boolean pattern must become 0 / -inf first (the public
    // scaled_dot_product_attention converts it; this internal entry point does not).
    std::optional<at::Tensor> additive;
    if (!causal)
      additive =
          at::zeros(pattern.sizes(), q.options().requires_grad(false)).masked_fill(pattern.logical_not(), -INFINITY);
    return std::get<0>(at::_scaled_dot_product_attention_math(q, repeat_kv(k, groups), repeat_kv(v, groups), additive,
                                                               /*dropout_p=*/0.0, causal,
                                                               /*dropout_mask=*/std::nullopt, scale));
  }
  if (causal && (q.is_cpu() || q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf)) {
    // Grouped heads read in place by the kernel (FlashAttention, CPU or GPU): no [B, H, T, Dh] copies of k and v
    // kept for backward. Only without a mask and, on a GPU, in 16 bits, where FlashAttention takes it (other CUDA
    // kernels would fall back to the unfused one).
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/std::nullopt, /*dropout_p=*/0.0,
                                            /*is_causal=*/true, scale, /*enable_gqa=*/true);
  }
  return at::scaled_dot_product_attention(q, repeat_kv(k, groups), repeat_kv(v, groups),
                                          causal ? std::optional<at::Tensor>() : std::optional<at::Tensor>(pattern),
                                          /*dropout_p=*/0.0, causal, scale);
}

at::Tensor query_scale(const at::Tensor& positions, const ModelConfig& config, at::ScalarType dtype) {
  // (int64 / int64: true division in float32, the very op transformers runs)
  const at::Tensor steps = at::floor(positions / config.query_scale_length);
  return (1.0 + config.query_scale_beta * at::log(1.0 + steps)).to(dtype).view({positions.size(0), 1, -1, 1});
}

at::Tensor attention(const at::Tensor& x, const AttentionWeights& w, const ModelConfig& config, int64_t layer,
                     const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& pattern,
                     const LinearAdapter* adapter, bool twice_differentiable, const at::Tensor& query_scale) {
  const int64_t b = x.size(0), t = x.size(1), dh = config.head_dim;
  // [B, T, heads*Dh] -> [B, heads, T, Dh], with Qwen3's RMSNorm over Dh of each head (on the contiguous
  // [B, T, heads, Dh] view, as transformers applies it), or OLMo-2's over all heads' [heads*Dh] before the split,
  // when a norm weight is given.
  auto heads = [&](const at::Tensor& y, const at::Tensor& norm = {}) {
    const bool whole = norm.defined() && config.qk_norm_whole;
    at::Tensor h = (whole ? model_norm(y, norm, config) : y).view({b, t, -1, dh});
    if (norm.defined() && !whole) h = model_norm(h, norm, config);  // (Cohere's weight per head: [heads, Dh])
    return h.transpose(1, 2);
  };
  at::Tensor q, k, v, gate;
  if (w.qkv.weight.defined()) {  // Phi-3: one projection, split as Phi3Attention splits it (views)
    const at::Tensor qkv = linear(x, w.qkv, {layer, Projection::qkv}, adapter);  // [B, T, (H + 2 Hkv)*Dh]
    const int64_t q_width = config.num_heads * dh, kv_width = config.num_kv_heads * dh;
    q = heads(qkv.narrow(-1, 0, q_width), w.q_norm);
    k = heads(qkv.narrow(-1, q_width, kv_width), w.k_norm);
    v = heads(qkv.narrow(-1, q_width + kv_width, kv_width));
  } else if (config.gated_attention) {  // Qwen3.5: each head's query, then its output gate
    const at::Tensor both = linear(x, w.q, {layer, Projection::q}, adapter).view({b, t, config.num_heads, 2 * dh});
    q = model_norm(both.narrow(-1, 0, dh), w.q_norm, config).transpose(1, 2);
    gate = both.narrow(-1, dh, dh).reshape({b, t, config.num_heads * dh});
    k = heads(linear(x, w.k, {layer, Projection::k}, adapter), w.k_norm);
    v = heads(linear(x, w.v, {layer, Projection::v}, adapter));
  } else {
    q = heads(linear(x, w.q, {layer, Projection::q}, adapter), w.q_norm);
    k = heads(linear(x, w.k, {layer, Projection::k}, adapter), w.k_norm);
    v = heads(linear(x, w.v, {layer, Projection::v}, adapter));
  }
  if (config.clip_qkv > 0.0) {  // OLMoE: after the norms, before RoPE
    q = q.clamp(-config.clip_qkv, config.clip_qkv);
    k = k.clamp(-config.clip_qkv, config.clip_qkv);
    v = v.clamp(-config.clip_qkv, config.clip_qkv);
  }
  if (cos.defined()) {  // (none in SmolLM3's and Cohere-2's layers without RoPE)
    q = apply_rope(q, cos, sin, config.rope_style);
    k = apply_rope(k, cos, sin, config.rope_style);
  }
  if (query_scale.defined()) q = q * query_scale;
  const double scale = config.attention_scale > 0.0 ? config.attention_scale : std::pow(static_cast<double>(dh), -0.5);
  const at::Tensor out = attend(q, k, v, pattern, scale, config.attention_softcap, twice_differentiable, w.sinks);
  // [B, H, T, Dh] -> [B, T, H*Dh]
  at::Tensor merged = out.transpose(1, 2).reshape({b, t, config.num_heads * dh});
  if (gate.defined()) merged = merged * at::sigmoid(gate);
  return linear(merged, w.o, {layer, Projection::o}, adapter);
}

}  // namespace abmll::model
