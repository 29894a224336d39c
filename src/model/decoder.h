// A decoder of any architecture model_config.h reads, from a Hugging Face model folder (config.json + safetensors),
// computing what transformers' ...ForCausalLM classes compute, with frozen base weights and an adapter seam
// (LinearAdapter) on every projection outside a mixture of experts' experts.
//
// Dimension letters: B batch, T sequence length, D hidden size, V vocabulary, N selected positions.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>

#include "model/decoder_weights.h"
#include "model/linear.h"
#include "model/model_config.h"
#include "model/padding.h"

namespace abmll::model {

struct ForwardOptions {
  // Gradient checkpointing per layer (layer_checkpoint.h): a checkpointed layer keeps only its input for backward
  // and is recomputed there, so its activation memory is one [B, T, D]. Takes effect only when grad mode is on and
  // something requires grad; then the adapter (and this decoder) must outlive backward, and the adapter must list in
  // trainable_tensors() every tensor that should get a gradient.
  bool checkpoint_layers = false;
  // The policy: with checkpoint_layers, only the first `checkpointed_layers` layers are recomputed (-1: every
  // layer); the others keep their activations, trading memory for the recomputation's time.
  int64_t checkpointed_layers = -1;
  // Set when the graph will be differentiated twice (create_graph: second-order meta-gradients). Attention then
  // runs the unfused math kernel (the fused SDPA kernels, CPU flash attention included, have no double backward),
  // and checkpoint_layers is ignored (recomputation supports one differentiation only).
  bool double_backward = false;
};

class Decoder {
 public:
  // Reads DIR/config.json and the checkpoint in DIR (model.safetensors, or a sharded index). Throws
  // abmll::InputError for an unsupported or inconsistent config and for missing or mis-shaped tensors.
  static Decoder load(const std::filesystem::path& dir, const WeightOptions& options = {});
  Decoder(ModelConfig config, DecoderWeights weights);

  const ModelConfig& config() const { return config_; }
  const DecoderWeights& weights() const { return weights_; }
  at::ScalarType dtype() const { return weights_.embed_tokens.scalar_type(); }
  at::Device device() const { return weights_.embed_tokens.device(); }

  // input_ids [B, T] int64, attention_mask [B, T] (1 = token, 0 = padding, left or right; undefined = no padding)
  // -> final hidden states [B, T, D] (after the last RMSNorm) in dtype(). Positions count real tokens only (see
  // padding.h). Rows at padding positions are meaningless. `adapter` (may be null) adds to every projection.
  // Builds an autograd graph only when grad mode is on and something requires grad (the base weights do not).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     const LinearAdapter* adapter = nullptr, const ForwardOptions& options = {}) const;
  // The same with an explicit layout (positions and attention pattern of every token) instead of a padding mask.
  at::Tensor forward(const at::Tensor& input_ids, const TokenLayout& layout, const LinearAdapter* adapter = nullptr,
                     const ForwardOptions& options = {}) const;

  // `layout` on device() with its RoPE tables, for a batch that is run many times (the inner steps).
  TokenLayout with_rope(const TokenLayout& layout) const;

  // hidden [..., D] -> logits [..., V] in dtype(), soft-capped when the model caps them (Gemma-2).
  at::Tensor logits(const at::Tensor& hidden) const;
  // Logits at selected positions only (the vocabulary projection dominates memory for large V):
  // hidden [B, T, D], batch_index [N], time_index [N] (int64) -> [N, V].
  at::Tensor logits_at(const at::Tensor& hidden, const at::Tensor& batch_index, const at::Tensor& time_index) const;

 private:
  ModelConfig config_;
  DecoderWeights weights_;
  double embedding_scale_ = 1.0;  // Gemma's sqrt(D), rounded to dtype()
  // The attention pattern [B, 1, T, T] bool of a sliding-window layer: `pattern` (undefined: causal) and, for every
  // query, only the keys fewer than config.sliding_window positions back.
  at::Tensor sliding_window_pattern(const TokenLayout& layout, const at::Tensor& pattern) const;

  // The frequencies of config.rope for `positions` [B, T]: inv_freq_, or LongRoPE's long ones once a position
  // reaches original_max_position_embeddings (as transformers switches, for the whole batch).
  const at::Tensor& inv_freq_for(const at::Tensor& positions) const;

  at::Tensor inv_freq_;  // [R/2] float32 on device(), from rope_inv_freq (R: the rotated dimensions of a head)
  at::Tensor long_inv_freq_;   // LongRoPE's frequencies past the original context; else undefined
  at::Tensor local_inv_freq_;  // the same for config.local_rope (Gemma-3's sliding-window layers); else undefined
};

}  // namespace abmll::model
