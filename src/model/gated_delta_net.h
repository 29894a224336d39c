// Qwen3.5's Gated DeltaNet: the linear-attention token mixer of its "linear_attention" layers, computing what
// transformers' Qwen3_5GatedDeltaNet computes on a whole sequence (no cache):
//   [q k v] = silu(causal depthwise conv(x W_qkv^T)),  z = x W_z^T,  beta = sigmoid(x W_b^T),
//   g = -exp(A_log) softplus(x W_a^T + dt_bias)                       (per value head and token; float32)
//   q, k L2-normed per head (q also times Dk^-1/2); per value head a state S [Dk, Dv], from 0:
//   S_t = exp(g_t) S_{t-1} + k_t beta_t (v_t - exp(g_t) S_{t-1}^T k_t)^T,   o_t = S_t^T q_t     (the delta rule)
//   y = out_proj(rms_norm(o) w * silu(z))                              (the norm per value head, in float32)
// The recurrence is evaluated chunk by chunk (64 tokens), as the reference's chunked form does: within a chunk by
// a triangular solve (the UT transform), across chunks by the state. Each of the five projections goes through
// linear() at (layer, delta_*), so LoRA adapts them as any other.
//
// Dimension letters: B batch, T tokens, D hidden; Hk key heads of Dk, Hv value heads of Dv (Hk dividing Hv: key
// head h serves value heads h (Hv / Hk) ... (h + 1)(Hv / Hk) - 1); C = 2 Hk Dk + Hv Dv the convolved channels, K taps.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/linear.h"
#include "model/model_config.h"

namespace abmll::model {

struct DeltaNetWeights {
  LinearWeights in_qkv;  // [C, D]: queries, keys, then values
  LinearWeights in_z;    // [Hv*Dv, D]
  LinearWeights in_b;    // [Hv, D]
  LinearWeights in_a;    // [Hv, D]
  LinearWeights out;     // [D, Hv*Dv]
  at::Tensor conv;       // [C, 1, K] depthwise taps, no bias
  at::Tensor a_log;      // [Hv]
  at::Tensor dt_bias;    // [Hv]
  at::Tensor norm;       // [Dv] the gated RMSNorm's weight (a plain scale, not 1 + w)
  bool defined() const { return in_qkv.weight.defined(); }
};

// x [B, T, D] (the layer's normed input) -> [B, T, D] in x's dtype. `tokens` [B, T] bool (true at real tokens), or
// undefined when no padding precedes a real token: inputs at padding are zeroed first (as transformers does), so
// that left padding leaves the state at 0. Every row is one sequence from its first token. Differentiable twice
// (second-order meta-gradients).
at::Tensor gated_delta_net(const at::Tensor& x, const DeltaNetWeights& w, const ModelConfig& config, int64_t layer,
                           const at::Tensor& tokens, const LinearAdapter* adapter);

// The chunked gated delta rule alone, in float32 (float64 stays float64): q, k [B, T, Hk, Dk], v [B, T, Hv, Dv],
// g, beta [B, T, Hv] -> o [B, T, Hv, Dv] in v's dtype. q and k are L2-normed here (eps 1e-6 under the root, as the
// reference's l2norm) and q scaled by Dk^-1/2. `chunk` tokens per chunk (the reference's 64; any size gives the same
// values up to rounding).
at::Tensor chunk_gated_delta_rule(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& g,
                                  const at::Tensor& beta, int64_t chunk = 64);

}  // namespace abmll::model
