// Held-out evaluation of a method (see evaluate.h).
#include "meta/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "data/episode.h"
#include "eval/calibration.h"
#include "eval/evaluation_summary.h"
#include "eval/reliability_svg.h"
#include "meta/checkpoint.h"
#include "meta/evaluation_progress.h"
#include "meta/run_setup.h"
#include "meta/task_evaluation.h"
#include "util/atomic_file.h"
#include "util/device.h"
#include "util/error.h"
#include "util/interrupt.h"
#include "util/log.h"

namespace abmll::meta {
namespace {

bool uses_posterior(Method m) { return m == Method::abmll || m == Method::abmll_icl; }
bool uses_point_lora(Method m) { return m == Method::lora || m == Method::fomaml || m == Method::reptile; }

}  // namespace

EvaluateResult evaluate(const ExperimentConfig& config, const EvaluateRun& run) {
  const auto start = std::chrono::steady_clock::now();
  const Method method = config.method;
  std::optional<Checkpoint> checkpoint;
  if (!run.checkpoint.empty()) {
    if (!uses_posterior(method) && !uses_point_lora(method))
      throw InputError(fmt::format("--checkpoint: method {} uses no meta-trained parameters", to_string(method)));
    checkpoint = load_checkpoint(run.checkpoint);
  } else if (uses_posterior(method) || method == Method::fomaml || method == Method::reptile) {
    throw InputError(fmt::format("method {} needs --checkpoint (a checkpoint of `abmll meta-train` with method {})",
                                 to_string(method), to_string(method == Method::abmll_icl ? Method::abmll : method)));
  }

  const DeviceChoice device = resolve_device(config.run.device);
  const LoadedExperiment experiment = load_experiment(config, device.name);
  // What each task adapts from: ABMLL's prior theta, or a LoRA (meta-learned, trained on the training tasks, or
  // -- `lora` without a checkpoint -- PEFT's initialisation: LoRA from scratch on the support set).
  std::optional<LoraPosterior> theta;
  std::optional<PointLora> lora_init;
  if (uses_posterior(method)) {
    theta = initial_theta(config, experiment);
    load_theta(*checkpoint, *theta);
  } else if (uses_point_lora(method)) {
    lora_init = initial_point_lora(config, experiment);
    if (checkpoint) load_parameters(*checkpoint, method, lora_init->names(), lora_init->tensors());
    else log::info("method lora without --checkpoint: each task's LoRA is trained from PEFT's initialisation");
  }
  const auto seed = static_cast<std::uint64_t>(config.run.seed);
  model::ForwardOptions recompute = recompute_policy(config.model);  // of the adaptations' inner steps
  EvaluationProgress progress(run.report, evaluation_fingerprint(run.resolved_config, device.name, run.checkpoint),
                              run.resume);

  EvaluateResult out;
  out.progress = progress.path();
  std::vector<eval::TaskResult> tasks;
  double scoring_seconds = 0;
  std::vector<std::string> skipped;
  for (const data::Task& task : experiment.tasks.test)
    if (task.kind != data::TaskKind::generation) ++out.tasks_total;
  for (std::size_t index = 0; index < experiment.tasks.test.size(); ++index) {
    const data::Task& task = experiment.tasks.test[index];
    if (task.kind == data::TaskKind::generation) {
      log::warn("task {}: a generation task has no answer options to score; skipped", task.name);
      skipped.push_back(task.name);
      continue;
    }
    if (const eval::TaskResult* finished = progress.finished(index, task.name)) {
      tasks.push_back(*finished);
      ++out.tasks_done;
      continue;
    }
    const TaskQueries queries{data::episode_splits(task, /*held_out=*/true).query, config.eval.query_size};
    eval::TaskResult result =
        evaluate_task(config, experiment, {theta ? &*theta : nullptr, lora_init ? &*lora_init : nullptr}, task,
                      queries, recompute, &scoring_seconds);
    progress.record(index, result);
    int64_t correct = 0;
    for (const auto& q : result.queries)
      correct += std::max_element(q.probs.begin(), q.probs.end()) - q.probs.begin() == q.label ? 1 : 0;
    log::info("task {}: {} queries, accuracy {:.4f}", task.name, result.queries.size(),
              static_cast<double>(correct) / static_cast<double>(result.queries.size()));
    tasks.push_back(std::move(result));
    ++out.tasks_done;
    // Stop between tasks: what is finished is recorded, and --resume continues from it.
    if (interrupted() && out.tasks_done < out.tasks_total) {
      out.interrupt_signal = interrupt_signal();
      out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return out;
    }
  }
  if (tasks.empty()) throw InputError("evaluate: the data config has no held-out task with answer options to score");

  const std::filesystem::path folder = run.report.parent_path();
  out.predictions = folder / "predictions.jsonl";
  out.plot = folder / "reliability.svg";
  eval::write_predictions(out.predictions, tasks);
  std::vector<eval::CategoricalPrediction> pooled;
  for (const auto& t : tasks)
    for (const auto& q : t.queries) pooled.push_back({q.probs, q.label});
  const eval::CalibrationMetrics pooled_metrics = eval::calibration_metrics(pooled, static_cast<int>(config.eval.bins));
  write_file_atomic(out.plot, eval::reliability_svg(pooled_metrics, fmt::format("{}: {} held-out tasks, {} queries",
                                                                                to_string(method), tasks.size(),
                                                                                pooled.size())));

  out.results = eval::summarize(tasks, {static_cast<int>(config.eval.bins), 1000, seed});
  out.results["method"] = to_string(method);
  out.results["n_tasks"] = tasks.size();
  out.results["skipped_tasks"] = skipped;
  out.results["predictions"] = out.predictions.string();
  out.results["plot"] = out.plot.string();
  if (checkpoint) out.results["checkpoint"] = run.checkpoint.string();
  if (uses_posterior(method) || uses_point_lora(method)) out.results["inner_steps"] = config.inner.eval_steps;
  if (uses_posterior(method)) out.results["posterior_samples"] = config.eval.samples;
  if (uses_point_lora(method)) out.results["adapted_from"] = checkpoint ? "checkpoint" : "peft_init";
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.scoring_seconds = scoring_seconds;
  out.queries = static_cast<int64_t>(pooled.size());
  const auto& agg = out.results["aggregate"]["pooled"];
  log::info("{}: {} tasks, {} queries: accuracy {:.4f}, ECE {:.4f}, NLL {:.4f} (pooled)", to_string(method),
            tasks.size(), pooled.size(), agg["accuracy"].get<double>(), agg["ece"].get<double>(),
            pooled_metrics.nll);
  return out;
}

}  // namespace abmll::meta
