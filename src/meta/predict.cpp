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
#include "meta/evaluation_progress.h"
#include "meta/run_setup.h"
#include "meta/task_evaluation.h"
#include "util/atomic_file.h"
#include "util/device.h"
#include "util/error.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/rng.h"

namespace abmll::meta {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One query's output line (see predict.h), its keys in that order.
nlohmann::ordered_json prediction_line(const data::Example& query, const data::ScoredPrompt& prompt,
                                       const eval::QueryResult& result) {
  const auto best = std::max_element(result.probs.begin(), result.probs.end());  // the first largest
  const auto k = static_cast<std::size_t>(best - result.probs.begin());
  const double entropy = eval::predictive_entropy(result.probs);
  nlohmann::ordered_json line = {{"line", query.source.line},
                                 {"probs", result.probs},
                                 {"option_loglik", result.loglik},
                                 {"options", query.options},
                                 {"prediction", k},
                                 {"answer", query.options[k]},
                                 {"confidence", *best},
                                 {"entropy", entropy},
                                 {"expected_entropy", result.expected_entropy},
                                 {"mutual_information", std::max(0.0, entropy - result.expected_entropy)}};
  if (query.label >= 0) {
    line["label"] = query.label;
    line["correct"] = static_cast<std::int64_t>(k) == query.label;
  }
  if (prompt.truncated) line["truncated"] = true;
  return line;
}

// Queries begin..end-1 scored: a TaskResult named after the task, query ids their positions in the input.
eval::TaskResult score_chunk(const LoadedExperiment& experiment, const std::vector<eval::OptionQuery>& tokenized,
                             const std::vector<data::Example>& queries, std::size_t begin, std::size_t end,
                             model::LinearAdapter* adapter, eval::OptionScoringOptions& scoring,
                             const std::string& task) {
  const std::vector<eval::OptionQuery> part(tokenized.begin() + static_cast<std::ptrdiff_t>(begin),
                                            tokenized.begin() + static_cast<std::ptrdiff_t>(end));
  const eval::OptionLogLikelihoods loglik =
      score_queries(experiment, part, adapter, scoring, fmt::format("task {}, queries {}-{}", task, begin + 1, end));
  const std::vector<eval::OptionPrediction> predictions = eval::predictive(loglik);
  eval::TaskResult result{task, {}, json::object()};
  for (std::size_t i = 0; i < part.size(); ++i) {
    const data::Example& query = queries[begin + i];
    result.queries.push_back({static_cast<std::int64_t>(begin + i), predictions[i].probs, predictions[i].loglik,
                              query.label, data::to_string(query.source),
                              eval::predictive_uncertainty(loglik[i]).expected_entropy});
  }
  return result;
}

// Whether a recorded chunk holds exactly the queries begin..end-1.
bool holds_queries(const eval::TaskResult& chunk, std::size_t begin, std::size_t end) {
  if (chunk.queries.size() != end - begin) return false;
  for (std::size_t i = 0; i < chunk.queries.size(); ++i)
    if (chunk.queries[i].id != static_cast<std::int64_t>(begin + i)) return false;
  return true;
}

}  // namespace

PredictResult predict(const ExperimentConfig& config, const PredictRun& run) {
  const std::string method(to_string(config.method));
  const bool adapts = uses_posterior(config.method) || uses_point_lora(config.method);
  if (adapts && run.adapted.empty())
    throw InputError(fmt::format("method {} predicts with a task's adapted {}: run `abmll adapt` for the task and "
                                 "pass its output folder as --adapted",
                                 method, uses_posterior(config.method) ? "posterior" : "LoRA"));
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
  const std::vector<data::Example> queries = data::read_query_file(
      run.input, task, reader_options(config.data), config.data.format == DataFormat::unifiedqa);

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
  const std::vector<eval::OptionQuery> tokenized = tokenize_queries(prompts, experiment.tokenizer);
  eval::OptionScoringOptions scoring = scoring_options(config.eval);  // its forwards shrink if memory runs out

  // Chunks, recorded as they finish.
  PredictResult result;
  fs::create_directories(run.out);
  result.record = run.out / "predictions.chunks.jsonl";
  result.predictions = run.out / "predictions.jsonl";
  json settings = run.resolved_config;
  settings["predict"] = {{"task", task.name}, {"chunk", run.chunk}};
  std::vector<fs::path> files{run.input};
  if (adapted) files.insert(files.begin(), adapted->source);
  EvaluationProgress progress(result.record, evaluation_fingerprint(settings, device.description, files), run.resume,
                              "chunk");
  const std::size_t chunk = std::max<std::size_t>(run.chunk, 1);
  result.chunks = (queries.size() + chunk - 1) / chunk;
  std::vector<eval::TaskResult> chunks(result.chunks);
  std::vector<std::size_t> pending;
  for (std::size_t c = 0; c < result.chunks; ++c) {
    const eval::TaskResult* done = progress.finished(c, task.name);
    if (done && holds_queries(*done, c * chunk, std::min(queries.size(), (c + 1) * chunk))) {
      chunks[c] = *done;
      ++result.chunks_done;
    } else {
      pending.push_back(c);
    }
  }
  double seconds = 0;
  std::size_t scored = 0;
  const auto chunks_start = std::chrono::steady_clock::now();
  for (std::size_t k = 0; k < pending.size(); ++k) {
    const std::size_t c = pending[k], begin = c * chunk, end = std::min(queries.size(), begin + chunk);
    const auto start = std::chrono::steady_clock::now();
    chunks[c] = score_chunk(experiment, tokenized, queries, begin, end, adapter.get(), scoring, task.name);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.record(c, chunks[c]);
    ++result.chunks_done;
    scored += end - begin;
    if (result.chunks > 1) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - chunks_start).count();
      const double left = elapsed / static_cast<double>(k + 1) * static_cast<double>(pending.size() - k - 1);
      log::info("task {}: {} of {} chunks of {} queries (elapsed {}, about {} left)", task.name, result.chunks_done,
                result.chunks, chunk, format_duration(elapsed), format_duration(left));
    }
    // Stop between chunks: what is scored is recorded, and --resume continues from it.
    if (const int signal = interrupt_signal(); signal && k + 1 < pending.size()) {
      result.interrupt_signal = signal;
      return result;
    }
  }

  std::string lines;
  eval::TaskResult labelled{task.name, {}, json::object()};
  std::int64_t truncated = 0, demos_kept = 0;
  for (const eval::TaskResult& part : chunks)
    for (const eval::QueryResult& q : part.queries) {
      const auto i = static_cast<std::size_t>(q.id);
      lines += prediction_line(queries[i], prompts[i], q).dump() + "\n";
      if (q.label >= 0) labelled.queries.push_back(q);
      truncated += prompts[i].truncated ? 1 : 0;
      demos_kept += prompts[i].demos;
    }
  write_file_atomic(result.predictions, lines);
  std::error_code ec;
  fs::remove(result.record, ec);  // predictions.jsonl holds every chunk now

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
       {"chunks", result.chunks},
       {"scoring_seconds", seconds},  // of the chunks this run scored
       {"scoring_queries_per_s", seconds > 0 ? static_cast<double>(scored) / seconds : 0.0},
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
  log::info("wrote {} ({:.1f} queries/s)", result.predictions.string(),
            seconds > 0 ? static_cast<double>(scored) / seconds : 0.0);
  return result;
}

}  // namespace abmll::meta
