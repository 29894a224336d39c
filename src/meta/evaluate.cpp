// Held-out evaluation of a method (see evaluate.h).
#include "meta/evaluate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>

#include "data/episode.h"
#include "dist/all_gather.h"
#include "dist/process_group.h"
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
#include "util/progress.h"

namespace abmll::meta {
namespace {


// A task finished by one of the ranks.
struct FinishedTask {
  std::size_t index = 0;  // its position among the held-out tasks
  eval::TaskResult result;
  double scoring_seconds = 0;
};

// The tasks the ranks finished in a round (each rank one at most, `mine`), in task order, on every rank; `signal`
// becomes the strongest interrupt any rank received (SIGTERM over SIGINT), so that all stop after the same round.
std::vector<FinishedTask> exchange(dist::ProcessGroup* group, std::optional<FinishedTask> mine, int& signal,
                                   std::size_t round) {
  std::vector<FinishedTask> out;
  if (!group) {
    if (mine) out.push_back(std::move(*mine));
    return out;
  }
  nlohmann::json payload = {{"signal", signal}};
  if (mine) {
    payload["index"] = mine->index;
    payload["result"] = eval::task_result_to_json(mine->result);
    payload["scoring_seconds"] = mine->scoring_seconds;
  }
  for (const nlohmann::json& theirs :
       dist::all_gather_json(*group, payload, fmt::format("the results of evaluation round {}", round + 1))) {
    signal = std::max(signal, theirs.at("signal").get<int>());
    if (!theirs.contains("result")) continue;
    out.push_back({theirs.at("index").get<std::size_t>(), eval::task_result_from_json(theirs.at("result")),
                   theirs.at("scoring_seconds").get<double>()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  return out;
}

// The split a held-out task's queries come from (eval.split).
data::Split query_split(const data::Task& task, EvalSplit split) {
  return split == EvalSplit::dev ? data::Split::dev : data::episode_splits(task, /*held_out=*/true).query;
}

// A held-out task's scoring work, roughly: its queries times their options (the adaptation costs about the same
// for every task).
double scoring_cost(const data::Task& task, const EvalConfig& eval) {
  const std::vector<data::Example>& queries = task.examples(query_split(task, eval.split));
  const std::int64_t query_size = eval.query_size;
  std::size_t n = queries.size(), options = 0;
  if (query_size > 0) n = std::min(n, static_cast<std::size_t>(query_size));
  for (std::size_t i = 0; i < n; ++i) options += std::max<std::size_t>(queries[i].options.size(), 1);
  return static_cast<double>(options);
}

// Which held-out tasks rank 0's record of a resumed evaluation holds (`finished`: rank 0's, false elsewhere), on
// every rank.
std::vector<bool> agree_on_finished(dist::ProcessGroup* group, std::vector<bool> finished) {
  if (!group) return finished;
  std::vector<std::size_t> mine;
  for (std::size_t i = 0; i < finished.size(); ++i)
    if (finished[i]) mine.push_back(i);
  for (const nlohmann::json& theirs :
       dist::all_gather_json(*group, mine, "the tasks a resumed evaluation finished"))
    for (const nlohmann::json& index : theirs) finished.at(index.get<std::size_t>()) = true;
  return finished;
}

// Throws InputError, before anything is adapted or scored (and on every rank), for held-out tasks whose episode
// cannot be drawn: with eval.split dev, a task without a dev split of its own; a split too small for data.shots or
// eval.query_size (only which examples are drawn, not their prompts).
void check_episodes(const ExperimentConfig& config, const std::vector<data::Task>& held_out) {
  if (config.eval.split == EvalSplit::dev) {
    // Dev predictions stand in for unseen data (a temperature fitted on them): they must share no example with
    // the support set or with what eval.split test reports.
    std::vector<std::string> lacking;
    for (const data::Task& task : held_out)
      if (task.kind != data::TaskKind::generation && !data::has_separate_dev_split(task, /*apart_from_scored=*/true))
        lacking.push_back(task.name);
    if (!lacking.empty())
      throw InputError(fmt::format("eval.split: dev: no dev split apart from the support split and the split "
                                   "eval.split test scores in task{} {}",
                                   lacking.size() > 1 ? "s" : "", fmt::join(lacking, ", ")));
  }
  const std::string context = fmt::format("evaluate (data.shots {}, eval.query_size {}, eval.split {})",
                                          config.data.shots, config.eval.query_size, to_string(config.eval.split));
  for (const data::Task& task : held_out) {
    if (task.kind == data::TaskKind::generation) continue;
    with_context(context, [&] {
      check_task_episode(config, task, {query_split(task, config.eval.split), config.eval.query_size});
    });
  }
}

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
  if (experiment.decoder.config().recurrent() && config.eval.share_prompt)
    log::info("{} has recurrent layers, which read a row as one sequence: each option is scored in a row of its own "
              "(eval.share_prompt does not apply)",
              model::to_string(experiment.decoder.config().architecture));
  const auto seed = static_cast<std::uint64_t>(config.run.seed);
  model::ForwardOptions recompute = recompute_policy(config.model);  // of the adaptations' inner steps
  const int world = run.group ? run.group->size() : 1, rank = run.group ? run.group->rank() : 0;
  const bool writer = rank == 0;
  std::optional<EvaluationProgress> progress;  // rank 0's record of finished tasks
  if (writer) {
    progress.emplace(EvaluationProgress::record_path(run.report),
                     evaluation_fingerprint(run.resolved_config, device.description, {run.checkpoint}), run.resume);
  }

  std::optional<AdaptedOutput> save_adapted;  // where each task's adapted posterior or LoRA is kept
  if (!run.save_adapted.empty()) {
    if (theta || lora_init) save_adapted = AdaptedOutput{run.save_adapted, run.checkpoint};
    else if (writer) log::warn("method {} adapts nothing: --save-adapted writes nothing", to_string(method));
  }

  EvaluateResult out;
  if (progress) out.progress = progress->path();
  const std::vector<data::Task>& held_out = experiment.tasks.test;
  std::map<std::size_t, eval::TaskResult> results;  // rank 0's, by task position
  std::vector<std::string> skipped;
  std::vector<bool> finished(held_out.size(), false);
  for (std::size_t index = 0; index < held_out.size(); ++index) {
    const data::Task& task = held_out[index];
    if (task.kind == data::TaskKind::generation) {
      if (writer) log::warn("task {}: a generation task has no answer options to score; skipped", task.name);
      skipped.push_back(task.name);
      continue;
    }
    ++out.tasks_total;
    if (!progress) continue;
    if (const eval::TaskResult* done = progress->finished(index, task.name)) {
      results[index] = *done;
      finished[index] = true;
    }
  }
  if (out.tasks_total == 0)
    throw InputError("evaluate: the data config has no held-out task with answer options to score");
  check_episodes(config, held_out);
  finished = agree_on_finished(run.group, std::move(finished));
  std::vector<std::size_t> pending;
  for (std::size_t index = 0; index < held_out.size(); ++index) {
    if (finished[index]) ++out.tasks_done;
    else if (held_out[index].kind != data::TaskKind::generation) pending.push_back(index);
  }
  if (world > 1) {
    // A round lasts as long as its slowest task: the largest tasks go first, together, so that the tasks of a
    // round take about the same time.
    std::vector<double> cost(held_out.size());
    for (std::size_t index : pending) cost[index] = scoring_cost(held_out[index], config.eval);
    std::stable_sort(pending.begin(), pending.end(), [&](std::size_t a, std::size_t b) { return cost[a] > cost[b]; });
  }

  double scoring_seconds = 0;
  const auto rounds_start = std::chrono::steady_clock::now();
  std::size_t run_here = 0;  // tasks finished by this run (not read back from the record)
  for (std::size_t round = 0; round * world < pending.size(); ++round) {
    std::optional<FinishedTask> mine;
    if (const std::size_t slot = round * world + rank; slot < pending.size()) {
      const data::Task& task = held_out[pending[slot]];
      const TaskQueries queries{query_split(task, config.eval.split), config.eval.query_size};
      mine.emplace();
      mine->index = pending[slot];
      mine->result = evaluate_task(config, experiment, {theta ? &*theta : nullptr, lora_init ? &*lora_init : nullptr},
                                   task, queries, recompute, &mine->scoring_seconds,
                                   save_adapted ? &*save_adapted : nullptr);
    }
    int signal = interrupt_signal();
    for (FinishedTask& f : exchange(run.group, std::move(mine), signal, round)) {
      ++out.tasks_done;
      ++run_here;
      scoring_seconds += f.scoring_seconds;
      if (!writer) continue;
      progress->record(f.index, f.result);
      int64_t correct = 0;
      for (const auto& q : f.result.queries)
        correct += std::max_element(q.probs.begin(), q.probs.end()) - q.probs.begin() == q.label ? 1 : 0;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - rounds_start).count();
      const double left = elapsed / static_cast<double>(run_here) * static_cast<double>(pending.size() - run_here);
      log::info("task {}: {} queries, accuracy {:.4f} ({} of {} tasks; elapsed {}, about {} left)", f.result.task,
                f.result.queries.size(), static_cast<double>(correct) / static_cast<double>(f.result.queries.size()),
                out.tasks_done, out.tasks_total, format_duration(elapsed), format_duration(left));
      results[f.index] = std::move(f.result);
    }
    // Stop between tasks: what is finished is recorded, and --resume continues from it.
    if (signal && out.tasks_done < out.tasks_total) {
      out.interrupt_signal = signal;
      out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return out;
    }
  }
  if (!writer) return out;
  std::vector<eval::TaskResult> tasks;
  for (auto& [index, result] : results) tasks.push_back(std::move(result));
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
  out.results["split"] = to_string(config.eval.split);
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
