// The frozen base weights of a decoder, loaded from a checkpoint by the name table (weight_names.h). On the CPU in
// the checkpoint's dtype they are views of the memory-mapped files (no copy); otherwise converted once. None
// requires grad: training only ever adapts them through LinearAdapter.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "io/tensor_store.h"
#include "model/attention.h"
#include "model/mlp.h"
#include "model/model_config.h"

namespace abmll::model {

struct LayerWeights {
  at::Tensor input_norm;           // [D]
  AttentionWeights attention;
  at::Tensor post_attention_norm;  // [D]
  MlpWeights mlp;
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

// Loads every tensor of weight_specs(config) from `store`. Throws abmll::InputError naming the checkpoint and the
// tensor when one is missing, has the wrong shape (with both shapes and the config's sizes) or is not a floating
// point tensor. Tensors the table does not know (e.g. a tied checkpoint's redundant lm_head.weight) are ignored.
DecoderWeights load_decoder_weights(const io::TensorStore& store, const ModelConfig& config,
                                    const WeightOptions& options);

}  // namespace abmll::model
