// Rotary position embeddings in transformers' "rotate_half" layout: a head's Dh values are two halves, and the pair
// (i, i + Dh/2) is rotated by angle position * inv_freq[i]; or in GLM's interleaved one, the pair (2i, 2i + 1).
// Inverse frequencies are computed in float32 as transformers does (including Llama-3.1's "llama3" rescaling), so
// the angles match bit for bit.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

#include "model/model_config.h"

namespace abmll::model {

// [Dh/2] float32 on the CPU (Dh: the rotated dimensions): theta^(-2i/Dh), divided by factor for rope.type ==
// "linear", rescaled for "llama3" and "yarn", divided by short_factor's or (`long_context`) long_factor's factors for
// "longrope".
at::Tensor rope_inv_freq(const RopeConfig& rope, int64_t rotated_dims, bool long_context = false);
// The same for config.rope (a Gemma-3's full-attention layers') over rotary_dim(config).
at::Tensor rope_inv_freq(const ModelConfig& config, bool long_context = false);
// How many of each head's first dimensions RoPE rotates: config.rotary_dim, or head_dim where it is unset.
int64_t rotary_dim(const ModelConfig& config);

// positions [B, T] int64 -> (cos, sin), each [B, T, Dh] in `dtype` (computed in float32, times attention_factor
// (RopeConfig's, YaRN's scaling), then cast, as transformers), in the interleaved layout when `interleaved`.
std::pair<at::Tensor, at::Tensor> rope_tables(const at::Tensor& positions, const at::Tensor& inv_freq,
                                              at::ScalarType dtype, double attention_factor = 1.0,
                                              bool interleaved = false);

// x [B, heads, T, Dh] rotated by (cos, sin) [B, T, Dh]: x * cos + rotate_half(x) * sin, rounded where that chain of
// ops rounds. On a GPU one kernel each way (cuda/rope_kernels.cu), instead of four passes over x. Tables narrower
// than x ([B, T, R], R < Dh: Phi-4-mini's and GLM's partial rotation) rotate x's first R dimensions and pass the
// rest. The interleaved styles (tables from rope_tables(..., interleaved)) rotate adjacent pairs, as ATen ops.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                      RopeStyle style = RopeStyle::rotate_half);

}  // namespace abmll::model
