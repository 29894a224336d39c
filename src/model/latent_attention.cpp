// Multi-head latent attention (see latent_attention.h). Dimension letters: B batch, T time, D hidden, H heads, and
// LatentAttentionConfig's q_rank, kv_rank, nope, rope and v.
#include "model/latent_attention.h"

#include <ATen/ops/cat.h>

#include "model/rms_norm.h"
#include "model/rope.h"

namespace abmll::model {
namespace {

// The bottlenecks' RMSNorms (DeepseekV2RMSNorm(q_lora_rank), (kv_lora_rank)) keep the class's default epsilon.
constexpr double kBottleneckEps = 1e-6;

}  // namespace

at::Tensor latent_attention(const at::Tensor& x, const AttentionWeights& w, const ModelConfig& config, int64_t layer,
                            const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& pattern,
                            const LinearAdapter* adapter, bool twice_differentiable) {
  const LatentAttentionConfig& a = config.mla;
  const int64_t b = x.size(0), t = x.size(1), h = config.num_heads;
  // [B, T, H*(nope + rope)] -> [B, H, T, nope + rope]
  const at::Tensor projected =
      a.q_rank > 0 ? linear(rms_norm(linear(x, w.q_a, {layer, Projection::q_a}, adapter), w.q_a_norm, kBottleneckEps),
                            w.q_b, {layer, Projection::q_b}, adapter)
                   : linear(x, w.q, {layer, Projection::q}, adapter);
  const at::Tensor q = projected.view({b, t, h, a.nope_dim + a.rope_dim}).transpose(1, 2);
  // [B, T, kv_rank + rope]: the latent, then the key's rotated part shared by all heads ([B, 1, T, rope])
  const at::Tensor compressed = linear(x, w.kv_a, {layer, Projection::kv_a}, adapter);
  const at::Tensor latent = rms_norm(compressed.narrow(-1, 0, a.kv_rank), w.kv_a_norm, kBottleneckEps);
  at::Tensor shared_key = compressed.narrow(-1, a.kv_rank, a.rope_dim).unsqueeze(1);
  at::Tensor q_rotated = q.narrow(-1, a.nope_dim, a.rope_dim);
  if (cos.defined()) {
    q_rotated = apply_rope(q_rotated, cos, sin, config.rope_style);
    shared_key = apply_rope(shared_key, cos, sin, config.rope_style);
  }
  // [B, T, kv_rank] -> [B, H, T, nope + v]: each head's unrotated key, then its value
  const at::Tensor expanded = linear(latent, w.kv_b, {layer, Projection::kv_b}, adapter)
                                  .view({b, t, h, a.nope_dim + a.v_dim})
                                  .transpose(1, 2);
  const at::Tensor query = at::cat({q.narrow(-1, 0, a.nope_dim), q_rotated}, -1);
  const at::Tensor key =
      at::cat({expanded.narrow(-1, 0, a.nope_dim), shared_key.expand({b, h, t, a.rope_dim})}, -1);
  const at::Tensor value = expanded.narrow(-1, a.nope_dim, a.v_dim);
  const at::Tensor out = attend(query, key, value, pattern, config.attention_scale, /*softcap=*/0.0,
                                twice_differentiable);  // [B, H, T, v]
  return linear(out.transpose(1, 2).reshape({b, t, h * a.v_dim}), w.o, {layer, Projection::o}, adapter);
}

}  // namespace abmll::model
