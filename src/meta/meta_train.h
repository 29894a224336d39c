// The meta-training run of ABMLL (`abmll meta-train`): loads the model, tokenizer and tasks a config names, learns
// the prior theta over LoRA adapters with the ABMLL objective, and writes the run folder:
//   metrics.jsonl                  one line per outer step
//   checkpoints/step-N.safetensors theta, AdamW state and the config, every run.checkpoint_every steps and at the end
//   adapter/                       the posterior-mean adapter of theta in PEFT's format
// Randomness of step s (which tasks, their episodes, the Monte Carlo noise) is derived from (run.seed, s) alone, so
// a resumed run continues exactly where the interrupted one stopped: the data position is the step.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>

#include "config/experiment_config.h"

namespace abmll::dist {
class ProcessGroup;
}

namespace abmll::meta {

struct MetaTrainRun {
  std::filesystem::path run_dir;
  bool resume = false;             // continue from the newest complete checkpoint in run_dir
  std::int64_t max_steps = 0;      // stop after this step (0: outer.steps); the schedule still spans outer.steps
  nlohmann::json resolved_config;  // stored in checkpoints; a resume under a different training config is refused
  std::int64_t trace_step = 0;     // > 0: write run_dir/trace-step-N.safetensors for outer step N (see below)
  // Data-parallel runs: the ranks' process group (null: one process). Each rank runs its slice of every meta-batch
  // (meta/data_parallel.h); rank 0 alone writes metrics, checkpoints and the adapter; every rank reads checkpoints.
  dist::ProcessGroup* group = nullptr;
  // > 0: profile outer steps [N, N + profile_steps) with LibTorch's profiler into run_dir/profile/ (every rank;
  // util/step_profiler.h): steps-N-M[.rank-R].trace.json and .ops.tsv, and with profile_memory .memory.tsv.
  std::int64_t profile_step = 0;
  std::int64_t profile_steps = 1;
  bool profile_memory = false;
};

// The trace of one outer step, for debugging and for checking against an independent implementation: theta before
// the update ("theta.<name>"), its gradient before clipping ("grad.<name>"), the step's token ids
// ("<split>.prompt_ids" / "<split>.answer_ids" concatenated, "<split>.prompt_lengths" / "<split>.answer_lengths",
// "<split>.task" per example, split = support | query) and, as metadata, the losses and "noise_seeds": a JSON list of
// each task's noise seed (task_noise.h), in meta-batch order.

struct MetaTrainResult {
  std::int64_t first_step = 0;     // steps already done when this process started (resume)
  std::int64_t steps_done = 0;     // outer steps completed in total
  int interrupt_signal = 0;        // SIGINT / SIGTERM that stopped the run early, or 0
  double last_outer_loss = 0;
  std::filesystem::path checkpoint;  // the last checkpoint written
  std::filesystem::path adapter;     // the PEFT export (empty when interrupted)
  double seconds = 0;
  std::int64_t tokens = 0;
  // With validation: {"metric", "last_step", "best_step", "best_value", "best_checkpoint", "best_adapter",
  // "stopped_early"} (best_* once a validation ran, stopped_early when validation.patience ended the run); null
  // without.
  nlohmann::json validation;
};

MetaTrainResult meta_train(const ExperimentConfig& config, const MetaTrainRun& run);

}  // namespace abmll::meta
