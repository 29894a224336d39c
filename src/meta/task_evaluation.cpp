#include "meta/task_evaluation.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "data/episode.h"
#include "eval/option_scoring.h"
#include "eval/predictive_uncertainty.h"
#include "meta/adapt.h"
#include "meta/adapted_task.h"
#include "meta/task_noise.h"
#include "util/cached_memory.h"
#include "util/log.h"
#include "util/torch_errors.h"
#include "util/rng.h"

namespace abmll::meta {
namespace {

std::vector<int64_t> widen(const std::vector<int32_t>& ids) { return {ids.begin(), ids.end()}; }

// The episode evaluate_task draws for `task`, up to its prompts (which need the tokenizer).
data::EpisodeOptions episode_selection(const ExperimentConfig& config, const data::Task& task,
                                       const TaskQueries& queries) {
  data::EpisodeOptions options = data::episode_options(config.data);
  options.query_size = queries.size;
  options.support_split = data::episode_splits(task, /*held_out=*/true).support;
  options.query_split = queries.split;
  return options;
}

}  // namespace

std::vector<eval::OptionQuery> tokenize_queries(const std::vector<data::ScoredPrompt>& prompts,
                                                const text::Tokenizer& tokenizer) {
  std::vector<eval::OptionQuery> out;
  out.reserve(prompts.size());
  for (const auto& p : prompts) {
    const std::vector<int32_t> prompt_ids = tokenizer.encode(p.prompt, true);
    eval::OptionQuery q{widen(prompt_ids), {}};
    for (const auto& c : p.continuations)
      q.options.push_back(widen(tokenizer.encode_continuation(p.prompt, prompt_ids, c)));
    out.push_back(std::move(q));
  }
  return out;
}

eval::OptionScoringOptions scoring_options(const EvalConfig& config) {
  eval::OptionScoringOptions scoring;
  scoring.length_normalize = config.length_normalize;
  scoring.share_prompt = config.share_prompt;
  scoring.share_prefix = config.share_prefix;
  scoring.max_tokens_per_forward = config.forward_tokens;
  return scoring;
}

eval::OptionLogLikelihoods score_queries(const LoadedExperiment& experiment,
                                         const std::vector<eval::OptionQuery>& queries, model::LinearAdapter* adapter,
                                         eval::OptionScoringOptions& scoring, const std::string& what) {
  const std::string device = experiment.decoder.device().str();
  for (;;) {
    try {
      return eval::option_log_likelihoods(experiment.decoder, queries, adapter, scoring);
    } catch (const std::exception& e) {
      // Below one row's worth nothing more can be saved: a forward holds at least one row.
      if (!is_out_of_memory(e) || scoring.max_tokens_per_forward <= 1) throw;
      const int64_t fewer = scoring.max_tokens_per_forward / 2;
      log::warn("{}: scoring ran out of memory on {} with forwards of {} tokens; retrying with {} (the same rows "
                "in smaller forwards; set eval.forward_tokens to start there)",
                what, device, scoring.max_tokens_per_forward, fewer);
      scoring.max_tokens_per_forward = fewer;
    }
    release_cached_memory(device);  // after the handler: the failed try's tensors are gone
  }
}

std::unique_ptr<model::LinearAdapter> scoring_adapter(const ExperimentConfig& config,
                                                      const LoadedExperiment& experiment, const std::string& task,
                                                      const LoraPosterior* phi, const PointLora* lora) {
  const at::NoGradGuard no_grad;
  if (phi) {
    // Groups = posterior samples of this task (or one group: the posterior mean).
    const int64_t samples = config.eval.samples;
    const auto seed = static_cast<std::uint64_t>(config.run.seed);
    const TaskNoise draws = noise_from_seeds({Rng::stream(seed, "eval/" + task).next_u64()});
    if (samples > 0) return phi->sample(samples, draws);
    return std::make_unique<model::BatchedLora>(phi->mean_adapter());
  }
  if (lora) {
    // MC dropout: one group per forward, the same LoRA with masks of its own (rows of different groups draw
    // different masks), from the task's "eval/<task>" stream. With no samples (validation.samples 0), the LoRA
    // without dropout, as abmll's posterior mean.
    const bool mc_dropout = config.eval.mc_dropout && config.eval.samples > 0;
    const int64_t groups = mc_dropout ? config.eval.samples : 1;
    auto adapter = std::make_unique<model::BatchedLora>(experiment.lora, groups);
    install_factors(*adapter, lora->factors(groups));
    if (mc_dropout)
      adapter->set_training(true, Rng::stream(static_cast<std::uint64_t>(config.run.seed), "eval/" + task).next_u64());
    return adapter;
  }
  return nullptr;
}

bool method_uses_icl(Method method) { return method == Method::icl || method == Method::abmll_icl; }

eval::TaskResult evaluate_task(const ExperimentConfig& config, const LoadedExperiment& experiment,
                               const AdaptationStart& start, const data::Task& task, const TaskQueries& queries,
                               model::ForwardOptions& recompute, double* scoring_seconds, const AdaptedOutput* save) {
  const auto seed = static_cast<std::uint64_t>(config.run.seed);
  data::EpisodeOptions options = episode_selection(config, task, queries);
  options.tokenizer = &experiment.tokenizer;
  options.max_length = config.model.max_length;
  options.icl = method_uses_icl(config.method);
  Rng rng = data::episode_rng(seed, task.name, 0);
  const data::Episode episode = data::sample_episode(task, options, rng);

  eval::TaskResult result{task.name, {}, nlohmann::json::object()};
  result.extra["support_size"] = episode.support.size();
  const std::string method_name(to_string(config.method));
  std::unique_ptr<model::LinearAdapter> adapter;
  if (start.theta) {
    std::vector<double> support_nll;
    const LoraPosterior phi =
        infer_task_posterior(config, experiment, *start.theta, episode, support_nll, recompute);
    result.extra["support_nll"] = support_nll;
    if (save) write_adapted_folder(save->folder / task.name, {task.name, method_name, phi, std::nullopt, {}}, config,
                                   experiment, save->prior);
    adapter = scoring_adapter(config, experiment, task.name, &phi, nullptr);
  } else if (start.lora) {
    std::vector<double> support_nll;
    const PointLora adapted = adapt_task_lora(config, experiment, *start.lora, episode, support_nll, recompute);
    result.extra["support_nll"] = support_nll;
    if (save)
      write_adapted_folder(save->folder / task.name, {task.name, method_name, std::nullopt, adapted, {}}, config,
                           experiment, save->prior);
    adapter = scoring_adapter(config, experiment, task.name, nullptr, &adapted);
  }
  eval::OptionScoringOptions scoring = scoring_options(config.eval);
  const std::vector<eval::OptionQuery> tokenized = tokenize_queries(episode.query, experiment.tokenizer);
  const auto scoring_start = std::chrono::steady_clock::now();
  const eval::OptionLogLikelihoods loglik =
      score_queries(experiment, tokenized, adapter.get(), scoring, "task " + task.name);
  if (scoring_seconds)
    *scoring_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - scoring_start).count();
  const std::vector<eval::OptionPrediction> predictions = eval::predictive(loglik);
  int64_t truncated = 0, demos = 0;
  for (std::size_t i = 0; i < predictions.size(); ++i) {
    const data::ScoredPrompt& q = episode.query[i];
    result.queries.push_back({static_cast<int64_t>(i), predictions[i].probs, predictions[i].loglik, q.label,
                              data::to_string(q.source), eval::predictive_uncertainty(loglik[i]).expected_entropy});
    truncated += q.truncated ? 1 : 0;
    demos += q.demos;
  }
  result.extra["truncated_prompts"] = truncated;
  if (options.icl) result.extra["mean_demos"] = static_cast<double>(demos) / static_cast<double>(predictions.size());
  return result;
}

void check_task_episode(const ExperimentConfig& config, const data::Task& task, const TaskQueries& queries) {
  Rng rng = data::episode_rng(static_cast<std::uint64_t>(config.run.seed), task.name, 0);
  data::draw_episode(task, episode_selection(config, task, queries), rng);
}

}  // namespace abmll::meta
