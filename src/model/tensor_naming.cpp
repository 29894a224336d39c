// Where a checkpoint keeps the decoder's tensors (see tensor_naming.h).
#include "model/tensor_naming.h"

#include <fmt/format.h>

#include "io/tensor_store.h"
#include "util/error.h"

namespace abmll::model {

std::string TensorNaming::operator()(const std::string& table_name) const {
  if (table_name == "lm_head.weight") return lm_head;
  if (table_name.rfind("model.", 0) == 0) return model_prefix + table_name.substr(6);
  return table_name;
}

TensorNaming tensor_naming(const ModelConfig& config, const io::TensorStore& store) {
  if (!config.multimodal) return {};
  const TensorNaming namings[] = {{"language_model.model.", "language_model.lm_head.weight"},
                                  {"model.language_model.", "lm_head.weight"}};
  for (const TensorNaming& naming : namings)
    if (store.has(naming("model.embed_tokens.weight"))) return naming;
  throw InputError(fmt::format("{}: config.json describes a multimodal model (its language model a {}), but the "
                               "checkpoint holds no language model embeddings ('{}' or '{}')",
                               store.source().string(), to_string(config.architecture),
                               namings[0]("model.embed_tokens.weight"),
                               namings[1]("model.embed_tokens.weight")));
}

}  // namespace abmll::model
