#include "meta/predict.h"

#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "data/episode.h"
#include "data/query_file.h"
#include "eval/evaluation_summary.h"
#include "eval/option_scoring.h"
#include "eval/predictive_uncertainty.h"
#include "meta/adapt.h"
#include "meta/adapted_task.h"
#include "meta/run_setup.h"
#include "meta/task_evaluation.h"
#include "util/atomic_file.h"
#include "util/device.h"
#include "util/error.h"
#include "util/log.h"
#include "util/rng.h"

namespace abmll::meta {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One query's output line (see predict.h), its keys in that order.
nlohmann::ordered_json prediction_line(const data::Example& query, const data::ScoredPrompt& prompt,
                                       const eval::OptionPrediction& prediction,
                                       const eval::PredictiveUncertainty& uncertainty) {
  const auto best = std::max_element(prediction.probs.begin(), prediction.probs.end());  // the first largest
  const auto k = static_cast<std::size_t>(best - prediction.probs.begin());
  nlohmann::ordered_json line = {{"line", query.source.line},
                                 {"probs", prediction.probs},
                                 {"option_loglik", prediction.loglik},
                                 {"options", query.options},
                                 {"prediction", k},
                                 {"answer", query.options[k]},
                                 {"confidence", *best},
                                 {"entropy", uncertainty.entropy},
                                 {"expected_entropy", uncertainty.expected_entropy},
                                 {"mutual_information", uncertainty.mutual_information}};
  if (query.label >= 0) {
    line["label"] = query.label;
    line["correct"] = static_cast<std::int64_t>(k) == query.label;
  }
  if (prompt.truncated) line["truncated"] = true;
  return line;
}

}  // namespace

PredictResult predict(const ExperimentConfig& config, const PredictRun& run) {
  const std::string method(to_string(config.method));
  const bool adapts = config.method != Method::pretrained && config.method != Method::icl;
  if (adapts && run.adapted.empty())
    throw InputError(fmt::format("method {} predicts with a task's adapted {}: run `abmll adapt` for the task and "
                                 "pass its output folder as --adapted",
                                 method, is_bayesian(config.method) ? "posterior" : "LoRA"));
  if (!adapts && !run.adapted.empty())
    throw InputError(fmt::format("method {} adapts nothing, so --adapted does not apply (give --task)", method));

  const DeviceChoice device = resolve_device(config.run.device);
  const LoadedExperiment experiment = load_experiment(config, device.name);
  std::optional<AdaptedTask> adapted;
  if (adapts) adapted = load_adapted_task(run.adapted, config, experiment);
  std::string name = run.task;
  if (adapted) {
    if (!name.empty() && name != adapted->task)
      throw InputError(fmt::format("--task {}, but {} holds task {}'s adaptation", name, run.adapted.string(),
                                   adapted->task));
    name = adapted->task;
  }
  if (name.empty())
    throw InputError(fmt::format("method {} needs --task (whose options and demonstrations the queries take)", method));
  const FoundTask found = find_task(experiment, name);
  const data::Task& task = *found.task;
  const std::vector<data::Example> queries = data::read_query_file(run.input, task, reader_options(config.data));

  // Prompts as evaluate builds them, with the demonstrations of the support set adapt fitted on.
  data::EpisodeOptions options = adaptation_episode_options(config, experiment, task, found.held_out);
  options.icl = method_uses_icl(config.method);
  std::vector<std::string> demos;
  if (options.icl) {
    Rng rng = data::episode_rng(static_cast<std::uint64_t>(config.run.seed), task.name, 0);
    demos = data::episode_demonstrations(task, options, data::draw_episode(task, options, rng));
  }
  std::vector<data::ScoredPrompt> prompts;
  prompts.reserve(queries.size());
  for (const data::Example& query : queries) prompts.push_back(data::episode_prompt(task, query, demos, options));

  const std::unique_ptr<model::LinearAdapter> adapter =
      scoring_adapter(config, experiment, task.name, adapted && adapted->posterior ? &*adapted->posterior : nullptr,
                      adapted && adapted->lora ? &*adapted->lora : nullptr);
  log::info("task {}: predicting {} queries of {} ({})", task.name, queries.size(), run.input.string(),
            adapted ? fmt::format("adapted by {}", adapted->method) : std::string("the base model"));
  const auto start = std::chrono::steady_clock::now();
  const eval::OptionLogLikelihoods loglik = eval::option_log_likelihoods(
      experiment.decoder, tokenize_queries(prompts, experiment.tokenizer), adapter.get(), scoring_options(config.eval));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::vector<eval::OptionPrediction> predictions = eval::predictive(loglik);

  std::string lines;
  eval::TaskResult labelled{task.name, {}, json::object()};
  std::int64_t truncated = 0, demos_kept = 0;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    const eval::PredictiveUncertainty uncertainty = eval::predictive_uncertainty(loglik[i]);
    lines += prediction_line(queries[i], prompts[i], predictions[i], uncertainty).dump() + "\n";
    if (queries[i].label >= 0)
      labelled.queries.push_back({static_cast<std::int64_t>(i), predictions[i].probs, predictions[i].loglik,
                                  queries[i].label, data::to_string(queries[i].source), uncertainty.expected_entropy});
    truncated += prompts[i].truncated ? 1 : 0;
    demos_kept += prompts[i].demos;
  }
  PredictResult result;
  result.predictions = run.out / "predictions.jsonl";
  fs::create_directories(run.out);
  write_file_atomic(result.predictions, lines);

  const double n = static_cast<double>(queries.size());
  json& s = result.summary;
  s = {{"task", task.name},
       {"held_out", found.held_out},
       {"method", method},
       {"adapted", run.adapted.string()},
       {"input", run.input.string()},
       {"queries", queries.size()},
       {"labelled", labelled.queries.size()},
       {"samples", adapted && adapted->posterior ? config.eval.samples : 0},
       {"truncated_prompts", truncated},
       {"scoring_seconds", seconds},
       {"scoring_queries_per_s", seconds > 0 ? n / seconds : 0.0},
       {"predictions", result.predictions.string()}};
  if (options.icl) s["mean_demos"] = static_cast<double>(demos_kept) / n;
  if (!labelled.queries.empty()) {
    const json summary = eval::summarize({labelled}, {static_cast<int>(config.eval.bins), 1000,
                                                      static_cast<std::uint64_t>(config.run.seed)});
    s["metrics"] = summary.at("aggregate").at("pooled");
    const json& m = s["metrics"];
    log::info("task {}: {} of {} queries gave their answer: accuracy {:.4f}, ECE {:.4f}", task.name,
              labelled.queries.size(), queries.size(), m.at("accuracy").get<double>(), m.at("ece").get<double>());
  }
  log::info("wrote {} ({:.1f} queries/s)", result.predictions.string(), seconds > 0 ? n / seconds : 0.0);
  return result;
}

}  // namespace abmll::meta
