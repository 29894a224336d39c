// What meta-train and adapt share: the LoRA settings and base dtype a config asks for, the model, tokenizer and
// tasks it names, and the names under which theta and phi are stored in safetensors files.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/experiment_config.h"
#include "data/task.h"
#include "meta/checkpoint.h"
#include "meta/lora_posterior.h"
#include "meta/point_lora.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "text/tokenizer.h"

namespace abmll::meta {

// What a method adapts to each task: ABMLL's posterior (abmll, abmll_icl), or a LoRA point estimate (lora, fomaml,
// reptile); pretrained and icl adapt nothing.
bool uses_posterior(Method method);
bool uses_point_lora(Method method);

// The `lora` keys' adapter for a model of `model` (lora.targets fitted to its projections: fit_lora_targets).
model::LoraSettings lora_settings(const LoraConfig& config, const model::ModelConfig& model);

// The base weights' dtype: model.dtype, with `auto` meaning float32 on the CPU and bfloat16 on a GPU.
std::optional<at::ScalarType> base_dtype(ModelDType dtype, const std::string& device);

// Which layers recompute their activations in backward: model.gradient_checkpointing and model.checkpointed_layers
// (meta-train's steps, and the inner steps of adapt and evaluate).
model::ForwardOptions recompute_policy(const ModelConfig& config);

// How the data files are read, from the data config.
data::ReaderOptions reader_options(const DataConfig& config);

struct LoadedExperiment {
  model::Decoder decoder;
  text::Tokenizer tokenizer;
  data::TaskSet tasks;
  model::LoraSettings lora;
};

// Loads model.path (config.json, weights, tokenizer.json) on `device` and the tasks of `data`.
LoadedExperiment load_experiment(const ExperimentConfig& config, const std::string& device);

// A prior of the config's family (posterior.family, posterior.weight_scale) and shape (every adapted site of the
// model), initialised by the family's initial_prior with the run's "init" random stream.
LoraPosterior initial_theta(const ExperimentConfig& config, const LoadedExperiment& experiment);

// The LoRA the point-estimate methods (lora, fomaml, reptile) start from: PointLora::initial with the same "init"
// random stream, so its factors equal initial_theta's means.
PointLora initial_point_lora(const ExperimentConfig& config, const LoadedExperiment& experiment);

// The meta-training method a checkpoint was written by (its "method" metadata), or "" when it has none.
std::string checkpoint_method(const Checkpoint& checkpoint);

// Copies the checkpoint's "theta.<name>" tensors into `params` (shapes from the config), in place. Throws InputError
// naming the checkpoint when it was written by a method other than `method` (abmll_icl reads abmll's), or a tensor
// is missing or has another shape.
void load_parameters(const Checkpoint& checkpoint, Method method, const std::vector<std::string>& names,
                     const std::vector<at::Tensor>& params);

// Checkpoint metadata naming theta's family ("posterior_family": factor | weight, "weight_scale": linear |
// softplus for weight), written with theta so that it is never read under the other family.
void record_family(const LoraPosterior& theta, std::map<std::string, std::string>& metadata);

// Copies theta ("theta.<name>" tensors of an ABMLL meta-training checkpoint) into `theta`, whose family and shapes
// come from the config. Throws InputError naming the checkpoint for another method's checkpoint, one of another
// variational family or scale form (a checkpoint without "posterior_family" is of the factor family), or a shape
// mismatch.
void load_theta(const Checkpoint& checkpoint, LoraPosterior& theta);

// "model.layers.0.self_attn.q_proj.a_mean", ...: one name per tensor of `posterior`, in tensors() order.
std::vector<std::string> parameter_names(const LoraPosterior& posterior);

}  // namespace abmll::meta
