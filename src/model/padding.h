// From a padded batch's attention mask to what the decoder needs: position ids and the attention pattern.
// Padding may be on the left or the right (or both): a sequence's tokens are numbered 0, 1, 2, ... from its first
// real token, so a left-padded sequence gets the same logits as the same sequence unpadded. This is what
// transformers' generate() does (cumsum of the mask); its plain forward() instead numbers every column 0..T-1
// whatever the mask, which agrees with ours for right padding only.
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::model {

// attention_mask [B, T] (1 = token, 0 = padding; any integer or bool dtype) -> position ids [B, T] int64:
// (number of real tokens up to and including t) - 1, clamped at 0 for leading padding.
at::Tensor position_ids_from_mask(const at::Tensor& attention_mask);

// [T, T] bool on `device`, true where query t may attend key s in plain causal attention: s <= t.
at::Tensor causal_pattern(int64_t t, const at::Device& device);

// attention_mask [B, T] -> [B, 1, T, T] bool, true where query t may attend key s: s <= t and s is a real token.
// A padding query also sees itself, so no row is empty (an all-false row makes attention NaN); the outputs at
// padding positions are meaningless and must not be read.
at::Tensor attention_pattern(const at::Tensor& attention_mask);

// What the decoder needs besides the token ids: each token's position (for RoPE) and which tokens each token
// attends to. A padded batch's layout comes from its mask (layout_from_mask); other layouts, such as several answer
// options sharing one prompt in a row (shared_prompt.h), are built directly.
struct TokenLayout {
  at::Tensor positions;  // [B, T] int64
  at::Tensor pattern;    // [B, 1, T, T] bool, true where query t may attend key s; every query row has a true entry
  // True when `pattern` is plain causal attention for every real token: no padding before a real token (right
  // padding or none). The decoder then runs causal attention without the pattern (FlashAttention on a GPU, which
  // takes no explicit mask); rows at padding positions differ and are meaningless either way.
  bool causal = false;
  // [B, T] bool, true at real tokens, when every row holds one sequence (a padded batch: layout_from_mask); undefined
  // for other layouts (packed rows). Recurrent layers (Qwen3.5's Gated DeltaNet) need it or `causal`.
  at::Tensor tokens;
  // Optional: the RoPE tables (cos, sin) [B, T, Dh] of `positions`, on the decoder's device in its dtype, made once
  // by Decoder::with_rope for a layout that is run many times; computed per forward when undefined. local_cos and
  // local_sin likewise for a Gemma-3's sliding-window layers (undefined for other models).
  at::Tensor cos, sin;
  at::Tensor local_cos, local_sin;
};

// attention_mask [B, T] -> {position_ids_from_mask, attention_pattern, whether every row is right-padded}.
TokenLayout layout_from_mask(const at::Tensor& attention_mask);

}  // namespace abmll::model
