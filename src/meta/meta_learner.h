// What the meta-training run loop (meta_train.cpp) needs from a method, so that ABMLL and the point-estimate
// baselines share everything else: task sampling, episodes, the outer optimiser, checkpoints, metrics, the adapter
// export. One implementation per kind of learned object: a prior over LoRA adapters (abmll, abmll_icl) or a LoRA
// point estimate (lora, fomaml, reptile).
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/experiment_config.h"
#include "meta/abmll_objective.h"
#include "meta/checkpoint.h"
#include "meta/run_setup.h"
#include "meta/task_evaluation.h"
#include "meta/task_noise.h"
#include "model/lora.h"

namespace abmll::meta {

struct MetaBatchGradient {
  std::vector<at::Tensor> grads;  // one per parameters() entry, before clipping
  double loss = 0;                // the outer loss of the meta-batch
  std::optional<double> query_nll;  // mean query NLL under the adapted parameters, where the method computes it
  std::vector<double> support_nll;  // mean inner-loop NLL before each inner step (empty without an inner loop)
  // The method's own per-step figures (kl, hyperprior): numbers that are means over the meta-batch's tasks, or the
  // same for every task, so that ranks combine them like the loss.
  nlohmann::json extra = nlohmann::json::object();
  // Per-step counts (scale_floor_hits of the weight family): ranks add them up.
  nlohmann::json counts = nlohmann::json::object();
};

class MetaLearner {
 public:
  virtual ~MetaLearner() = default;
  // The learned tensors (float32 leaves that the outer optimiser updates in place) and their names, in the same
  // order; checkpoints store them as "theta.<name>".
  virtual std::vector<at::Tensor> parameters() const = 0;
  virtual std::vector<std::string> parameter_names() const = 0;
  // One meta-batch of `tasks` tasks whose examples `nll` scores; noise[g] drives task g's Monte Carlo draws.
  virtual MetaBatchGradient meta_gradient(const NllFunction& nll, int64_t tasks, const TaskNoise& noise) const = 0;
  // The adapter users get from the run: theta's posterior mean, or the learned LoRA (one group).
  virtual std::map<model::LinearSite, model::LoraFactors> exported_factors() const = 0;
  // Whether the outer step differentiates through the inner steps (the forward must be twice differentiable).
  virtual bool second_order() const = 0;
  // Facts a checkpoint (and a trace) records beside the tensors, so that it is never read as something else.
  virtual void record(std::map<std::string, std::string>& metadata) const = 0;
  // Copies the learned tensors from a checkpoint of this learner (its method, family and shapes), in place.
  // InputError naming the checkpoint otherwise.
  virtual void load(const Checkpoint& checkpoint) = 0;
  // What a task adapts from under the current theta, as `evaluate` adapts from a checkpoint of it (validation).
  virtual AdaptationStart adaptation_start() const = 0;
};

// The learner of config.method, initialised from the run's "init" random stream. Throws InputError for a method
// that learns nothing across tasks (pretrained, icl).
std::unique_ptr<MetaLearner> make_meta_learner(const ExperimentConfig& config, const LoadedExperiment& experiment);

}  // namespace abmll::meta
