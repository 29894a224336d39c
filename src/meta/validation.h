// Validation during meta-training (validation.* keys): every validation.every outer steps, and at step 0 and the
// run's last step, the current theta is adapted to each validation task and scored exactly as `abmll evaluate`
// would score a checkpoint of it with eval.split dev (task_evaluation.h: the same support set, inner steps,
// posterior samples and noise; validation.samples may ask for other samples), the queries taken from the tasks' dev
// splits:
//   held_out  the held-out tasks; evaluate scores their test splits, so selecting a checkpoint on their dev splits
//             does not look at the figures it will be reported by (CrossFit's few-shot dev files exist for this)
//   train     the training tasks; meta-training draws its episodes from their train splits only
// Tasks and episodes are the same at every validation, so successive figures differ by theta alone.
//
// Each validation appends one line to validation.jsonl: the step, the pooled accuracy, ECE, NLL and Brier score,
// the mean accuracy over tasks, each task's accuracy, the mean support NLL before and after adaptation, the
// seconds taken, and whether it is the best so far by validation.metric. With validation.keep_best the checkpoint
// of the best one is kept as checkpoints/best.safetensors (`abmll evaluate --checkpoint` reads it) and its adapter
// as adapter-best/. With validation.patience P the run ends after P validations in a row without a new best.
//
// Data-parallel runs: the ranks validate every world-th task each and combine their predictions, so every rank
// gets the figures a single process computes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/experiment_config.h"
#include "meta/run_setup.h"
#include "meta/task_evaluation.h"
#include "model/decoder.h"

namespace abmll::dist {
class ProcessGroup;
}

namespace abmll::data {
struct Task;
}

namespace abmll::meta {

// Where validation stands, carried by checkpoints so that a resumed run validates and selects as an uninterrupted
// one: the last step validated and the best validation so far, under the settings they were computed with.
struct ValidationState {
  std::int64_t last_step = -1;
  std::optional<std::int64_t> best_step;
  double best_value = 0;
  std::int64_t since_best = 0;  // validations after the best one
};

class Validator {
 public:
  // Chooses the validation tasks. InputError when validation is on and a task lacks a dev split to draw queries
  // from (or holds fewer examples than the support or query set needs), or no task has answer options.
  Validator(const ExperimentConfig& config, const LoadedExperiment& experiment, dist::ProcessGroup* group);

  bool enabled() const { return every_ > 0; }
  // Whether step `step` (outer steps done) is validated in a run that ends at `last`.
  bool due(std::int64_t step, std::int64_t last) const;

  // Validates `start` (the learner's current theta) as step `step`, on every rank; updates `state` (the last step,
  // the best so far by validation.metric, ties keeping the earlier, and the validations since it) and logs the
  // figures. Returns the line for validation.jsonl, whose "best" says whether this validation is the new best.
  nlohmann::json validate(std::int64_t step, const AdaptationStart& start, ValidationState& state);

  // Whether validation.patience validations in a row have passed without a new best.
  bool out_of_patience(const ValidationState& state) const;
  // {"metric", "last_step"} and, once a validation ran, {"best_step", "best_value"}: for the run's report.
  nlohmann::json summary(const ValidationState& state) const;

  // The state as checkpoint metadata, and back. A state recorded under other validation settings (or none) gives
  // a fresh state; `source` names the checkpoint in the warning that says so.
  void record(const ValidationState& state, std::map<std::string, std::string>& metadata) const;
  ValidationState restore(const std::map<std::string, std::string>& metadata, const std::string& source) const;

  const std::vector<const data::Task*>& tasks() const { return tasks_; }

 private:
  // The figures of one validation (the line without "best") and, in `value`, the selecting metric.
  nlohmann::json figures(std::int64_t step, const AdaptationStart& start, double& value);

  const ExperimentConfig& config_;
  ExperimentConfig scoring_config_;  // config_ with eval.samples replaced by validation.samples (when >= 0)
  const LoadedExperiment& experiment_;
  dist::ProcessGroup* group_;
  std::int64_t every_ = 0;
  std::vector<const data::Task*> tasks_;
  model::ForwardOptions recompute_;  // the adaptations' recomputation policy, kept across validations
  nlohmann::json settings_;          // what the figures depend on besides theta
};

}  // namespace abmll::meta
