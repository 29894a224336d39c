// Granite-4.0's Mamba-2 layers: the selective state-space token mixer of its "mamba" layers, computing what
// transformers' GraniteMoeHybridMambaLayer computes on a whole sequence (no cache):
//   [z | xBC | dt] = x W_in^T;   [x | B | C] = silu(causal depthwise conv(xBC) + conv bias)
//   dt = clamp(softplus(dt + dt_bias), time_step_limit);   a = -exp(A_log) dt          (per head and token)
//   per head a state S [N, P], from 0:   S_t = exp(a_t) S_{t-1} + B_t (dt_t x_t)^T,   y_t = S_t^T C_t + D x_t
//   out = out_proj(w * rms_norm_per_group(y * silu(z)))                                   (in float32 until out_proj)
// B and C are shared by the heads of a group (G groups of H / G consecutive heads). The scan is evaluated chunk by
// chunk (mamba_chunk_size tokens), as the reference's chunked (SSD) form does: within a chunk as a masked,
// decay-weighted product of C and B (like attention), across chunks by the state. in_proj and out_proj go through
// linear() at (layer, mamba_in / mamba_out), so LoRA adapts them as any other projection.
//
// Dimension letters: B batch, T tokens, D hidden; H heads of P (I = H P, the inner width), G groups of B and C of N
// numbers; C = I + 2 G N the convolved channels, K taps.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/linear.h"
#include "model/model_config.h"

namespace abmll::model {

struct Mamba2Weights {
  LinearWeights in;      // [2I + 2GN + H, D]: the gate z, x B C, dt (biases with mamba_proj_bias)
  LinearWeights out;     // [D, I]
  at::Tensor conv;       // [C, 1, K] depthwise taps
  at::Tensor conv_bias;  // [C] (undefined without mamba_conv_bias)
  at::Tensor a_log;      // [H]
  at::Tensor d;          // [H] the skip connection's scale
  at::Tensor dt_bias;    // [H]
  at::Tensor norm;       // [I] the gated RMSNorm's weight (a plain scale)
  bool defined() const { return in.weight.defined(); }
};

// x [B, T, D] (the layer's normed input) -> [B, T, D] in x's dtype. `tokens` [B, T] bool (true at real tokens), or
// undefined when no padding precedes a real token: in_proj's outputs and the convolved channels at padding are
// zeroed, so that a row's output is its sequence's alone, however much padding precedes it. (transformers zeroes
// in_proj's input instead, which is the same without mamba_proj_bias, as in the releases; with it, its left-padded
// rows differ from the sequences alone.) Every row is one sequence from its first token. Differentiable twice
// (second-order meta-gradients).
at::Tensor mamba2(const at::Tensor& x, const Mamba2Weights& w, const ModelConfig& config, int64_t layer,
                  const at::Tensor& tokens, const LinearAdapter* adapter);

// The chunked scan alone, in float32 (float64 stays float64): x [B, T, H, P], dt [B, T, H] (after softplus and
// clamp), a [H] (-exp(A_log)), b, c [B, T, G, N] -> y [B, T, H, P] in the wide type, without the D x term. `chunk`
// tokens per chunk (any size gives the same values up to rounding).
at::Tensor mamba2_chunk_scan(const at::Tensor& x, const at::Tensor& dt, const at::Tensor& a, const at::Tensor& b,
                             const at::Tensor& c, int64_t chunk);

}  // namespace abmll::model
