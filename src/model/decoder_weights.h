// The frozen base weights of a decoder, loaded from a checkpoint by the name table (weight_names.h). On the CPU in
// the checkpoint's dtype they are views of the memory-mapped files (no copy); otherwise converted once. None
// requires grad: training only ever adapts them through LinearAdapter.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/tensor_store.h"
#include "model/attention.h"
#include "model/gated_delta_net.h"
#include "model/mamba2.h"
#include "model/mlp.h"
#include "model/moe.h"
#include "model/model_config.h"

namespace abmll::model {

// A norm weight is as stored, in the model's dtype; with config.norms_scale_in_float32 (Gemma, OLMo-2) in float32,
// and with config.unit_offset_norms (Gemma) the scale it stands for, 1 + w (the reference adds the 1 in float32).
// An undefined norm is one the architecture does not have.
struct LayerWeights {
  at::Tensor input_norm;             // [D] input_layernorm (OLMo-2: none)
  AttentionWeights attention;        // (undefined in a Gated DeltaNet layer)
  DeltaNetWeights delta_net;         // instead, in Qwen3.5's linear-attention layers (config.is_linear_attention)
  Mamba2Weights mamba;               // instead, in Granite-4.0's Mamba-2 layers (is_linear_attention, mamba.defined())
  at::Tensor attention_output_norm;  // [D] Gemma-2's and OLMo-2's post_attention_layernorm, on the attention's output
  at::Tensor mlp_input_norm;         // [D] post_attention_layernorm (Gemma-2: pre_feedforward_layernorm; OLMo-2: none)
  MlpWeights mlp;                    // (undefined in a layer with experts)
  MoeWeights moe;                    // a layer with experts (config.moe.in_layer): instead of mlp
  at::Tensor mlp_output_norm;        // [D] Gemma-2's and OLMo-2's post_feedforward_layernorm
};

struct DecoderWeights {
  at::Tensor embed_tokens;  // [V, D]
  std::vector<LayerWeights> layers;
  at::Tensor norm;          // [D]
  at::Tensor lm_head;       // [V, D]; the same tensor as embed_tokens when tie_word_embeddings
};

struct WeightOptions {
  std::optional<at::ScalarType> dtype;  // nullopt: the dtype model.embed_tokens.weight is stored in
  std::string device = "cpu";           // a LibTorch device string ("cpu", "cuda:0")
};

// transformers 5's rule for a config that ties lm_head to the embeddings (tie_word_embeddings) when the checkpoint
// nevertheless holds an lm_head.weight: tied when both hold the same values (a redundant copy), otherwise untied,
// the checkpoint's head used (with a warning). Multimodal Mistral-3 configs are tied by default and their releases
// are not. Clears config.tie_word_embeddings in the second case.
void settle_tied_head(ModelConfig& config, const io::TensorStore& store);

// Loads every tensor of weight_specs(config) from `store`, under the names tensor_naming(config, store) gives them.
// Throws abmll::InputError naming the checkpoint and the tensor when one is missing, has the wrong shape (with both
// shapes and the config's sizes) or is not float32, bfloat16, float16 or float64 (8-bit floats: a quantized
// checkpoint), but for config.fp8_weights' float8_e4m3fn weights, dequantized with their `weight_scale_inv` (fp8.h),
// and gpt-oss's MXFP4 experts. Tensors the table does not know (e.g. a tied checkpoint's redundant lm_head.weight, a
// multimodal checkpoint's vision tower, an FP8 checkpoint's activation scales) are ignored.
DecoderWeights load_decoder_weights(const io::TensorStore& store, const ModelConfig& config,
                                    const WeightOptions& options);

// Random weights of the shape `config` implies, made directly on options.device in options.dtype (float32 when
// unset): every matrix and bias N(0, 0.02^2) (transformers' default initializer_range), every norm a scale of 1, drawn
// from a generator seeded with `seed`. For benchmarks of a model shape whose weights are not at hand (an 8B model
// is made in seconds on a GPU instead of read from 16 GB of files); never for results.
DecoderWeights random_decoder_weights(const ModelConfig& config, const WeightOptions& options, std::uint64_t seed);

}  // namespace abmll::model
