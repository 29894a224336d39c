// `abmll adapt`: a new task's adapter posterior phi from its support set, starting from a meta-trained prior theta
// (ABMLL.md section 3, test time): K = inner.eval_steps inner steps on the task's k shots. Writes, per task,
//   phi.safetensors  the posterior's means and scale parameters per adapted site, with the task and step count
//   adapter/         the posterior-mean adapter in PEFT's format
// Several tasks are adapted one after another under one loaded model and prior, each exactly as alone.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "config/experiment_config.h"
#include "data/episode.h"
#include "meta/lora_posterior.h"
#include "meta/point_lora.h"
#include "meta/run_setup.h"

namespace abmll::meta {

struct AdaptRun {
  std::filesystem::path checkpoint;  // a meta-train checkpoint (checkpoints/step-N.safetensors)
  std::vector<std::string> tasks;    // tasks of the data config (held-out or training), each named once
  bool all_held_out = false;         // and every held-out task not named already
  // One task named (without all_held_out): its folder. Otherwise the parent of one folder per task, out/<task>/.
  std::filesystem::path out;
};

struct AdaptResult {
  std::string task;
  std::filesystem::path folder, phi_file, adapter_dir;
  std::vector<double> support_nll;  // mean support NLL before each inner step, and after the last
  bool held_out = true;
  std::size_t support_size = 0;
};

// Adapts run's tasks in order, calling `written` after each task's folder is complete. Every task is looked up
// before any is adapted (an unknown or repeated one throws InputError naming it). Stops between tasks on SIGINT or
// SIGTERM, leaving the finished folders complete; returns the tasks done.
std::vector<AdaptResult> adapt_tasks(const ExperimentConfig& config, const AdaptRun& run,
                                     const std::function<void(const AdaptResult&)>& written);

// The task named `name` among the experiment's tasks, and whether it is held out (held-out tasks first). Throws
// InputError listing the held-out tasks when there is none.
struct FoundTask {
  const data::Task* task = nullptr;
  bool held_out = true;
};
FoundTask find_task(const LoadedExperiment& experiment, const std::string& name);

// How adapt draws `task`'s episode (episode index 0 of the run's seed, data.shots from the training split; the
// query split as meta-training or evaluation takes it): its support set is the k shots the task is adapted on, and
// the demonstrations of its ICL prompts.
data::EpisodeOptions adaptation_episode_options(const ExperimentConfig& config, const LoadedExperiment& experiment,
                                                const data::Task& task, bool held_out);

// A task's posterior phi (one group) from theta by K = inner.eval_steps inner steps on the episode's support set,
// with the task's own noise stream: what `adapt` writes and what `evaluate` scores with. `support_nll` receives
// the mean support NLL before each step and, last, under the posterior mean. The inner steps recompute layers in
// backward as `recompute` says (recompute_policy); when they run out of memory with model.recompute_on_oom, they are
// retried with more recomputation, and `recompute` keeps that policy for the tasks that follow.
LoraPosterior infer_task_posterior(const ExperimentConfig& config, const LoadedExperiment& experiment,
                                   const LoraPosterior& theta, const data::Episode& episode,
                                   std::vector<double>& support_nll, model::ForwardOptions& recompute);

// The point-estimate methods' counterpart (lora, fomaml, reptile): the task's LoRA after inner.eval_steps steps
// (inner.lr, inner.optimizer) on the support NLL from the learned initialisation `init`. `support_nll` receives
// the mean support NLL before each step and, last, after the final one. `recompute` as for infer_task_posterior.
PointLora adapt_task_lora(const ExperimentConfig& config, const LoadedExperiment& experiment, const PointLora& init,
                          const data::Episode& episode, std::vector<double>& support_nll,
                          model::ForwardOptions& recompute);

}  // namespace abmll::meta
