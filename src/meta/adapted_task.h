// A task's adapted adapter as `abmll adapt` saves it (phi.safetensors) and `abmll predict` loads it back:
//   abmll, abmll_icl      the task's posterior phi under the config's variational family ("phi.<name>" tensors,
//                         LoraPosterior::tensor_names, one task: no group dimension);
//   lora, fomaml, reptile the task's adapted LoRA ("phi.<...>.lora_A", "phi.<...>.lora_B").
// Metadata: task, method, inner_steps, prior (the checkpoint adapted from), posterior_family (the family's
// description, or "none (a LoRA point estimate)"), scale_floor, lora_alpha, lora_rslora, model (model.path).
//
// The file is untrusted input: loading checks it against the config (method, family, scale floor, LoRA scaling,
// every tensor's name and shape) and refuses non-finite values, naming the file and the mismatch.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "config/experiment_config.h"
#include "meta/lora_posterior.h"
#include "meta/point_lora.h"
#include "meta/run_setup.h"

namespace abmll::meta {

struct AdaptedTask {
  std::string task;
  std::string method;                      // the method it was adapted by (as written)
  std::optional<LoraPosterior> posterior;  // abmll, abmll_icl: phi, grouped with one group
  std::optional<PointLora> lora;           // lora, fomaml, reptile: grouped with one group
  std::filesystem::path source;            // the file it was read from (empty when built in memory)
};

// Writes `adapted` (exactly one of posterior and lora set, each with one group) to `file` atomically; `prior` is
// the checkpoint it was adapted from.
void save_adapted_task(const std::filesystem::path& file, const AdaptedTask& adapted, const ExperimentConfig& config,
                       const std::filesystem::path& prior);

// What `abmll adapt` writes for `adapted` into `out`: phi.safetensors (save_adapted_task) and adapter/, the
// posterior-mean (or adapted) LoRA in PEFT's format. Returns the two paths.
struct AdaptedFolder {
  std::filesystem::path phi, adapter;
};
AdaptedFolder write_adapted_folder(const std::filesystem::path& out, const AdaptedTask& adapted,
                                   const ExperimentConfig& config, const LoadedExperiment& experiment,
                                   const std::filesystem::path& prior);

// Reads `file` (phi.safetensors, or a folder holding one) for `config`, whose method must be the file's (abmll and
// abmll_icl share theirs). Throws InputError naming the file for anything that does not fit, as above.
AdaptedTask load_adapted_task(const std::filesystem::path& file, const ExperimentConfig& config,
                              const LoadedExperiment& experiment);

}  // namespace abmll::meta
