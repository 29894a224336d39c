// The decoder's forward pass (see decoder.h): embeddings (Gemma: times sqrt(D); Granite: its multiplier), L pre-norm
// blocks
//   h = h + attention(rms_norm(h)),  h = h + mlp(rms_norm(h))
// (Gemma-2 and -3, GLM-4: each block's output normed too before it is added, h = h + rms_norm(attention(rms_norm(h))),
// ...; OLMo-2: only the outputs, h = h + rms_norm(attention(h)), ...; Cohere: one LayerNorm read by both blocks,
// h = h + attention(n) + mlp(n); Granite: what a block adds times its multiplier; Gemma-3's and OLMo-3's
// sliding-window layers with a RoPE of their own, SmolLM3's and Cohere-2's layers without one; a mixture of experts'
// layers with routed experts instead of the MLP; DeepSeek's latent attention; Qwen3.5's Gated DeltaNet layers;
// Granite-4.0's Mamba-2 layers), then
// the final norm; logits are the lm_head projection of chosen rows (Gemma-2: soft-capped; Granite: divided by
// logits_scaling; Cohere: times logit_scale).
#include "model/decoder.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/embedding.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/logical_and.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/scalar_tensor.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "io/tensor_store.h"
#include "model/attention.h"
#include "model/gated_delta_net.h"
#include "model/mamba2.h"
#include "model/latent_attention.h"
#include "model/layer_checkpoint.h"
#include "model/padding.h"
#include "model/layer_norm.h"
#include "model/rope.h"
#include "model/soft_cap.h"
#include "util/error.h"

namespace abmll::model {
namespace {

// Whether the RoPE tables are in the interleaved layout (GLM's, Cohere's).
bool interleaved_rope(const ModelConfig& c) { return c.rope_style != RopeStyle::rotate_half; }

}  // namespace

Decoder Decoder::load(const std::filesystem::path& dir, const WeightOptions& options) {
  ModelConfig config = load_model_config(dir);
  io::TensorStore store = io::TensorStore::open(dir);
  settle_tied_head(config, store);
  DecoderWeights weights = load_decoder_weights(store, config, options);
  return Decoder(std::move(config), std::move(weights));
}

Decoder::Decoder(ModelConfig config, DecoderWeights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  inv_freq_ = rope_inv_freq(config_).to(device());
  if (config_.rope.type == "longrope") long_inv_freq_ = rope_inv_freq(config_, /*long_context=*/true).to(device());
  if (config_.local_rope) local_inv_freq_ = rope_inv_freq(*config_.local_rope, rotary_dim(config_)).to(device());
  // sqrt(D) as a float32 number rounded to the weights' dtype, as Gemma's embedding multiplies by it (in bfloat16,
  // sqrt(3584) = 59.87 becomes 60); a scalar, so that a forward on a GPU copies nothing to it.
  if (config_.scaled_embeddings)
    embedding_scale_ = at::scalar_tensor(std::sqrt(static_cast<double>(config_.hidden_size)), at::kFloat)
                           .to(dtype())
                           .item<double>();
}

at::Tensor Decoder::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                            const LinearAdapter* adapter, const ForwardOptions& options) const {
  // The layout is made where the mask lies (usually the CPU: reading it there costs the GPU no wait).
  const at::Tensor mask = attention_mask.defined() ? attention_mask : at::ones_like(input_ids);
  if (mask.sizes() != input_ids.sizes())
    throw Error(fmt::format("Decoder::forward: attention_mask is [{}] but input_ids is [{}]",
                            fmt::join(mask.sizes(), ", "), fmt::join(input_ids.sizes(), ", ")));
  return forward(input_ids, layout_from_mask(mask), adapter, options);
}

at::Tensor Decoder::forward(const at::Tensor& input_ids, const TokenLayout& layout, const LinearAdapter* adapter,
                            const ForwardOptions& options) const {
  if (input_ids.dim() != 2 || input_ids.scalar_type() != at::kLong)
    throw Error(fmt::format("Decoder::forward: input_ids must be [B, T] int64, got {} [{}]",
                            c10::toString(input_ids.scalar_type()), fmt::join(input_ids.sizes(), ", ")));
  const int64_t b = input_ids.size(0), t = input_ids.size(1);
  if (layout.positions.sizes() != input_ids.sizes() || layout.pattern.dim() != 4 || layout.pattern.size(0) != b ||
      layout.pattern.size(1) != 1 || layout.pattern.size(2) != t || layout.pattern.size(3) != t)
    throw Error(fmt::format("Decoder::forward: layout positions [{}] / pattern [{}] do not fit input_ids [{}]",
                            fmt::join(layout.positions.sizes(), ", "), fmt::join(layout.pattern.sizes(), ", "),
                            fmt::join(input_ids.sizes(), ", ")));
  // Checked here rather than left to at::embedding, whose message names no id (and which reads out of bounds on
  // some backends); before the copy to the device, where the ids usually come from the CPU.
  if (input_ids.numel() > 0) {
    const auto [min, max] = at::aminmax(input_ids);
    const int64_t lo = min.item<int64_t>(), hi = max.item<int64_t>();
    if (lo < 0 || hi >= config_.vocab_size)
      throw InputError(fmt::format("token id {} is outside the vocabulary [0, {})", lo < 0 ? lo : hi,
                                   config_.vocab_size));
  }
  const at::Tensor ids = input_ids.to(device());

  at::Tensor h = at::embedding(weights_.embed_tokens, ids);  // [B, T, D]
  if (config_.scaled_embeddings) h = h * embedding_scale_;
  if (config_.embedding_multiplier != 1.0) h = h * config_.embedding_multiplier;  // Granite's, in h's dtype
  // [B, T, Dh], given or made here; a Gemma-3's sliding-window layers rotate by their own.
  auto tables = [&](const at::Tensor& given_cos, const at::Tensor& given_sin, const at::Tensor& inv_freq,
                    double attention_factor) {
    if (given_cos.defined() && given_cos.scalar_type() == h.scalar_type() && given_cos.device() == h.device())
      return std::pair{given_cos, given_sin};
    return rope_tables(layout.positions.to(device()), inv_freq, h.scalar_type(), attention_factor,
                       interleaved_rope(config_));
  };
  const auto [cos, sin] = tables(layout.cos, layout.sin, inv_freq_for(layout.positions), config_.rope.attention_factor);
  at::Tensor local_cos, local_sin;
  if (local_inv_freq_.defined())
    std::tie(local_cos, local_sin) =
        tables(layout.local_cos, layout.local_sin, local_inv_freq_, config_.local_rope->attention_factor);
  // Ministral-3's query scale [B, 1, T, 1] (1 for the first query_scale_length positions), or undefined.
  const at::Tensor scale =
      config_.scales_queries() ? query_scale(layout.positions.to(device()), config_, h.scalar_type()) : at::Tensor();
  // [B, 1, T, T], or undefined for plain causal attention
  const at::Tensor pattern = layout.causal ? at::Tensor() : layout.pattern.to(device());
  // The sliding-window layers' pattern: `pattern` narrowed to the keys fewer than sliding_window positions back.
  // Positions never exceed a token's index in the row, so only rows longer than the window need it; the others
  // keep the pattern above (and causal rows FlashAttention).
  at::Tensor window_pattern;
  if (config_.sliding_window > 0 && t > config_.sliding_window)
    window_pattern = sliding_window_pattern(layout, pattern);
  // Qwen3.5's Gated DeltaNet layers and Granite-4.0's Mamba-2 layers read a row as one sequence, its padding zeroed
  // (none to zero when no padding precedes a real token).
  at::Tensor real_tokens;
  if (config_.recurrent() && !layout.causal) {
    if (!layout.tokens.defined())
      throw Error(fmt::format("Decoder::forward: {}'s recurrent layers read each row as one sequence; a "
                              "layout packing several into a row cannot be run",
                              to_string(config_.architecture)));
    real_tokens = layout.tokens.to(device());
  }
  std::vector<at::Tensor> trainable;  // what checkpointed layers pass gradients to, besides their input
  const bool checkpoint = options.checkpoint_layers && !options.double_backward;
  if (checkpoint && adapter != nullptr) trainable = adapter->trainable_tensors();
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    // Captures by value what may go out of scope before backward (tensors are shared, not copied).
    const auto layer_index = static_cast<std::size_t>(i);
    const bool sliding = layer_index < config_.sliding_layers.size() && config_.sliding_layers[layer_index];
    const bool local = local_inv_freq_.defined() && sliding;
    // SmolLM3's and Cohere-2's layers without RoPE get no tables.
    const bool rotates = config_.rotates(i);
    Block block = [this, i, cos = !rotates ? at::Tensor() : local ? local_cos : cos,
                   sin = !rotates ? at::Tensor() : local ? local_sin : sin,
                   pattern = sliding && window_pattern.defined() ? window_pattern : pattern, adapter, scale,
                   real_tokens, twice = options.double_backward](const at::Tensor& x) {
      const LayerWeights& layer = weights_.layers[static_cast<std::size_t>(i)];
      // A norm where the layer has one (input norms: not OLMo-2's; output norms: Gemma-2's, Gemma-3's, OLMo-2's).
      auto norm = [&](const at::Tensor& h, const at::Tensor& weight) {
        return weight.defined() ? model_norm(h, weight, config_) : h;
      };
      // What a block adds to the residual stream (Granite: scaled by residual_multiplier, in h's dtype).
      const double multiplier = config_.residual_multiplier;
      auto added = [multiplier](const at::Tensor& h) { return multiplier != 1.0 ? h * multiplier : h; };
      const at::Tensor normed = norm(x, layer.input_norm);
      const at::Tensor attended =
          config_.is_linear_attention(i)
              ? config_.mamba.defined() ? mamba2(normed, layer.mamba, config_, i, real_tokens, adapter)
                                        : gated_delta_net(normed, layer.delta_net, config_, i, real_tokens, adapter)
          : config_.mla.defined()
              ? latent_attention(normed, layer.attention, config_, i, cos, sin, pattern, adapter, twice)
              : attention(normed, layer.attention, config_, i, cos, sin, pattern, adapter, twice, scale);
      if (config_.parallel_blocks)  // Cohere: (h + attention) + mlp, both of the one normed input
        return x + attended + mlp(normed, layer.mlp, config_.activation, i, adapter);
      at::Tensor y = x + added(norm(attended, layer.attention_output_norm));
      const at::Tensor z = norm(y, layer.mlp_input_norm);
      const at::Tensor fed = layer.moe.defined() ? moe(z, layer.moe, config_.moe, config_.activation, i)
                                                 : mlp(z, layer.mlp, config_.activation, i, adapter);
      return y + added(norm(fed, layer.mlp_output_norm));
    };
    const bool recompute = checkpoint && (options.checkpointed_layers < 0 || i < options.checkpointed_layers);
    h = recompute ? checkpointed(std::move(block), h, trainable) : block(h);
  }
  return model_norm(h, weights_.norm, config_);
}

at::Tensor Decoder::sliding_window_pattern(const TokenLayout& layout, const at::Tensor& pattern) const {
  const at::Tensor positions = layout.positions.to(device());                                     // [B, T]
  const at::Tensor back = positions.unsqueeze(2) - positions.unsqueeze(1);                        // [B, T, T] q - k
  const at::Tensor in_window = back.lt(config_.sliding_window).unsqueeze(1);                      // [B, 1, T, T]
  if (pattern.defined()) return pattern.logical_and(in_window);
  return in_window.logical_and(causal_pattern(positions.size(1), positions.device()));
}

const at::Tensor& Decoder::inv_freq_for(const at::Tensor& positions) const {
  if (!long_inv_freq_.defined() || positions.numel() == 0) return inv_freq_;
  // One read of the largest position (positions are usually on the CPU, where the layout is made).
  const int64_t length = positions.max().item<int64_t>() + 1;
  return length > config_.rope.original_max_position_embeddings ? long_inv_freq_ : inv_freq_;
}

TokenLayout Decoder::with_rope(const TokenLayout& layout) const {
  // A causal layout's pattern is never read: left where it is.
  TokenLayout out;
  out.positions = layout.positions.to(device());
  out.pattern = layout.causal ? layout.pattern : layout.pattern.to(device());
  out.causal = layout.causal;
  if (layout.tokens.defined()) out.tokens = layout.tokens.to(device());
  std::tie(out.cos, out.sin) = rope_tables(out.positions, inv_freq_for(out.positions), dtype(),
                                           config_.rope.attention_factor, interleaved_rope(config_));
  if (local_inv_freq_.defined())
    std::tie(out.local_cos, out.local_sin) =
        rope_tables(out.positions, local_inv_freq_, dtype(), config_.local_rope->attention_factor,
                    interleaved_rope(config_));
  return out;
}

at::Tensor Decoder::logits(const at::Tensor& hidden) const {
  return final_logits(at::linear(hidden, weights_.lm_head), config_.logit_softcap, config_.logits_scaling,
                      config_.logit_scale);
}

at::Tensor Decoder::logits_at(const at::Tensor& hidden, const at::Tensor& batch_index,
                              const at::Tensor& time_index) const {
  const int64_t t = hidden.size(1);
  at::Tensor rows = (batch_index * t + time_index).to(hidden.device());   // [N] into the [B*T] rows
  return logits(hidden.reshape({-1, hidden.size(2)}).index_select(0, rows));  // [N, V]
}

}  // namespace abmll::model
