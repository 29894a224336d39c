// DeepSeek-V2's and -V3's multi-head latent attention (MLA), as DeepseekV2Attention / DeepseekV3Attention compute it
// without a cache: queries through the q_a -> RMSNorm -> q_b bottleneck (or one q_proj), keys and values from a
// per-token latent (kv_a_proj_with_mqa: kv_rank normed dimensions, expanded per head by kv_b_proj, and a rope-sized
// key shared by all heads), each head's query and key `nope` unrotated dimensions then `rope` rotated ones, and the
// output projection of the H value heads. See LatentAttentionConfig.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/attention.h"
#include "model/linear.h"
#include "model/model_config.h"

namespace abmll::model {

// x [B, T, D], (cos, sin) [B, T, rope] (config.rotary_dim), pattern [B, 1, T, T] bool or undefined (causal) ->
// [B, T, D]. Each projection goes through linear() at (layer, q or q_a/q_b, kv_a, kv_b, o), so all five are
// adaptable; `twice_differentiable` as attention()'s.
at::Tensor latent_attention(const at::Tensor& x, const AttentionWeights& w, const ModelConfig& config, int64_t layer,
                            const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& pattern,
                            const LinearAdapter* adapter, bool twice_differentiable = false);

}  // namespace abmll::model
