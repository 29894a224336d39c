// `abmll evaluate`: scores the held-out tasks of a config with one method and reports accuracy and calibration
// (ABMLL.md sections 3 test time, 4 and 6). Per held-out task, one episode (episode_rng(seed, task, 0): support
// from the task's training file, query from its test file, else its dev file; with eval.split dev from its dev
// file, which must then be a split of its own; eval.query_size examples or all of them when 0), the same for every
// method so that methods are compared on the same queries:
//   pretrained  the base model, query prompts without demonstrations
//   icl         the base model, each query prompt led by demonstrations from the support set
//   abmll       theta from the checkpoint; phi from inner.eval_steps inner steps on the support set (as
//               `abmll adapt`); the posterior predictive over eval.samples draws of phi (0: its mean)
//   abmll_icl   both
//   lora, fomaml, reptile
//               the LoRA from the checkpoint (lora without one: PEFT's initialisation, i.e. LoRA from scratch),
//               trained inner.eval_steps inner steps on the support set (as `abmll adapt`), then scored
// Tasks without answer options (generation) are skipped with a warning.
//
// Data-parallel (a process group in EvaluateRun): the ranks take the tasks in rounds of `world` tasks, largest first
// (queries times options), rank r the r-th task of each round, and exchange each round's results; rank 0 records
// them (--resume), logs them and writes the outputs. A signal to any rank stops all after the round. Every task's
// result depends on the settings alone (its episode, adaptation noise and posterior draws come from its own seeded
// streams), so any number of ranks reports what one process would, and an evaluation interrupted with one number of
// ranks resumes with another.
//
// This lives in meta, not eval: it drives the methods (posterior inference, checkpoints), which sit above the
// scoring and metrics of src/eval that it uses.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

#include "config/experiment_config.h"

namespace abmll::dist {
class ProcessGroup;
}

namespace abmll::meta {

struct EvaluateRun {
  std::filesystem::path checkpoint;  // a meta-train checkpoint of the method; required by all but pretrained, icl, lora
  std::filesystem::path report;      // REPORT.json (written by the caller); outputs go beside it
  // Resuming (evaluation_progress.h): each finished task is recorded beside the report as it finishes; with
  // `resume`, tasks finished under the same settings (`resolved_config`, device, checkpoint) are not run again.
  bool resume = false;
  nlohmann::json resolved_config;
  dist::ProcessGroup* group = nullptr;  // the ranks of a distributed launch, or null
  // Non-empty: each task's adapted posterior (or LoRA) is also written to save_adapted/<task>/ as `abmll adapt`
  // writes it (by whichever rank adapts the task), for `abmll predict`. Tasks a resumed run had finished are not
  // adapted again.
  std::filesystem::path save_adapted;
};

// On ranks other than 0 only the interrupt and task counts are set: rank 0 alone has the results and writes files.
struct EvaluateResult {
  nlohmann::json results;  // {"method", "n_tasks", "per_task", "aggregate", "predictions", "plot", ...}
  std::filesystem::path predictions, plot;
  double seconds = 0;          // the whole evaluation
  double scoring_seconds = 0;  // scoring answer options only (no adaptation), summed over tasks (and ranks)
  int64_t queries = 0;         // queries scored
  // SIGINT / SIGTERM that stopped the evaluation after a task (or a round of tasks, when any rank received it;
  // results, predictions and plot then empty), or 0.
  int interrupt_signal = 0;
  std::size_t tasks_done = 0, tasks_total = 0;  // held-out tasks with options: finished, and in all
  std::filesystem::path progress;  // the finished-task record; the caller removes it once the report is written
};

// Writes predictions.jsonl and reliability.svg beside run.report and returns the results for the report. Throws
// InputError for a missing checkpoint or one of another method, or no scorable held-out task.
EvaluateResult evaluate(const ExperimentConfig& config, const EvaluateRun& run);

}  // namespace abmll::meta
