// Where a checkpoint keeps the decoder's tensors. The name table (weight_names.h) names them as a text-only model's
// checkpoint does: "model.embed_tokens.weight", "model.layers.3.mlp.up_proj.weight", ..., "lm_head.weight". A
// multimodal Gemma-3 or Mistral-3 checkpoint (Gemma3ForConditionalGeneration, Mistral3ForConditionalGeneration)
// keeps its language model's beside a vision tower's, under one of two namings: the releases' (also what
// transformers 5 saves), "language_model.model.*" and "language_model.lm_head.weight"; or its modules' names,
// "model.language_model.*" and "lm_head.weight".
#pragma once

#include <string>

#include "model/model_config.h"

namespace abmll::io {
class TensorStore;
}

namespace abmll::model {

struct TensorNaming {
  std::string model_prefix = "model.";      // stands for the leading "model." of the name table's names
  std::string lm_head = "lm_head.weight";

  // The checkpoint's name for a name-table name.
  std::string operator()(const std::string& table_name) const;
};

// How `store` names `config`'s tensors: the text-only naming, or for a multimodal config the one whose embeddings
// the store holds. Throws abmll::InputError naming the checkpoint when a multimodal one holds neither.
TensorNaming tensor_naming(const ModelConfig& config, const io::TensorStore& store);

}  // namespace abmll::model
