#include "meta/adapt.h"

#include <ATen/core/grad_mode.h>
#include <fmt/format.h>

#include <optional>
#include <set>

#include "data/episode.h"
#include "meta/abmll_objective.h"
#include "meta/adapted_task.h"
#include "meta/checkpoint.h"
#include "meta/episode_nll.h"
#include "meta/point_methods.h"
#include "meta/recompute_retry.h"
#include "meta/run_setup.h"
#include "model/peft_adapter.h"
#include "util/device.h"
#include "util/error.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/read_scalars.h"
#include "util/rng.h"

namespace abmll::meta {

namespace {

// adapt(nll) with nll the episode's NLL, whose forwards recompute layers as `recompute` says; retried with more
// recomputation when it runs out of memory (model.recompute_on_oom).
template <class Adapt>
auto on_episode(const ExperimentConfig& config, const LoadedExperiment& experiment, const data::Episode& episode,
                model::ForwardOptions& recompute, Adapt&& adapt) {
  const TokenizedEpisode tokens = tokenize_episode(episode, experiment.tokenizer);
  return retry_with_more_recomputation(recompute, experiment.decoder.config().num_layers,
                                       experiment.decoder.device().str(), config.model.recompute_on_oom,
                                       fmt::format("task {}'s adaptation", episode.task), [&] {
                                         model::ScoringOptions scoring;
                                         scoring.forward = recompute;
                                         EpisodeNll nll(experiment.decoder, experiment.lora, {tokens}, scoring);
                                         return adapt(nll);
                                       });
}

}  // namespace

FoundTask find_task(const LoadedExperiment& experiment, const std::string& name) {
  for (const auto* list : {&experiment.tasks.test, &experiment.tasks.train})
    for (const auto& t : *list)
      if (t.name == name) return {&t, list == &experiment.tasks.test};
  std::string names;
  for (const auto& t : experiment.tasks.test) names += " " + t.name;
  throw InputError(fmt::format("--task {}: no such task in the data config (held-out tasks:{})", name, names));
}

data::EpisodeOptions adaptation_episode_options(const ExperimentConfig& config, const LoadedExperiment& experiment,
                                                const data::Task& task, bool held_out) {
  data::EpisodeOptions options = data::episode_options(config.data);
  options.tokenizer = &experiment.tokenizer;
  options.max_length = config.model.max_length;
  const data::EpisodeSplits splits = data::episode_splits(task, held_out);
  options.support_split = splits.support;
  options.query_split = splits.query;
  return options;
}

LoraPosterior infer_task_posterior(const ExperimentConfig& config, const LoadedExperiment& experiment,
                                   const LoraPosterior& theta, const data::Episode& episode,
                                   std::vector<double>& support_nll, model::ForwardOptions& recompute) {
  const auto seed = static_cast<std::uint64_t>(config.run.seed);
  const InnerLoop inner{config.inner.eval_steps, config.inner.lr, config.inner.optimizer,
                        config.inner.first_step_nll_only, config.inner.samples, config.outer.beta};
  return on_episode(config, experiment, episode, recompute, [&](EpisodeNll& nll) {
    const TaskNoise noise = noise_from_seeds({Rng::stream(seed, "adapt/" + episode.task).next_u64()});
    auto nll_fn = [&nll](model::LinearAdapter& a, int64_t s, Split split) { return nll(a, s, split); };
    std::vector<at::Tensor> before;
    LoraPosterior phi = infer_posteriors(theta, 1, nll_fn, inner, false, noise, &before);
    const at::NoGradGuard no_grad;
    before.push_back(nll(phi.means(), 1, Split::support).mean());
    support_nll = read_scalars(before);
    return phi;
  });
}

PointLora adapt_task_lora(const ExperimentConfig& config, const LoadedExperiment& experiment, const PointLora& init,
                          const data::Episode& episode, std::vector<double>& support_nll,
                          model::ForwardOptions& recompute) {
  return on_episode(config, experiment, episode, recompute, [&](EpisodeNll& nll) {
    auto nll_fn = [&nll](model::LinearAdapter& a, int64_t s, Split split) { return nll(a, s, split); };
    std::vector<at::Tensor> before;
    // The inner steps' dropout masks (lora.dropout) from the task's own stream, as the posterior's noise.
    const std::uint64_t dropout_seed =
        Rng::stream(static_cast<std::uint64_t>(config.run.seed), "adapt-dropout/" + episode.task).next_u64();
    PointLora adapted =
        adapt_point_lora(init, 1, nll_fn, {config.inner.eval_steps, config.inner.lr, config.inner.optimizer},
                         &before, dropout_seed);
    const at::NoGradGuard no_grad;
    before.push_back(nll(adapted.factors(1), 1, Split::support).mean());
    support_nll = read_scalars(before);
    return adapted;
  });
}

std::vector<AdaptResult> adapt_tasks(const ExperimentConfig& config, const AdaptRun& run,
                                     const std::function<void(const AdaptResult&)>& written) {
  const DeviceChoice device = resolve_device(config.run.device);
  const Checkpoint checkpoint = load_checkpoint(run.checkpoint);
  const LoadedExperiment experiment = load_experiment(config, device.name);
  if (!uses_posterior(config.method) && !uses_point_lora(config.method))
    throw InputError(fmt::format("method {} adapts nothing (adapt needs abmll, abmll_icl, lora, fomaml or reptile)",
                                 to_string(config.method)));

  std::vector<FoundTask> found;
  std::set<std::string> named;
  for (const std::string& name : run.tasks) {
    if (!named.insert(name).second) throw InputError(fmt::format("--task {}: named twice", name));
    found.push_back(find_task(experiment, name));
  }
  if (run.all_held_out)
    for (const data::Task& task : experiment.tasks.test)
      if (named.insert(task.name).second) found.push_back({&task, true});
  if (found.empty()) throw InputError("adapt needs a task: --task NAME, or --held-out for every held-out task");

  // Theta or the learned LoRA initialisation, read once for all tasks.
  std::optional<LoraPosterior> theta;
  std::optional<PointLora> init;
  if (uses_posterior(config.method)) {
    theta = initial_theta(config, experiment);
    load_theta(checkpoint, *theta);
  } else {
    init = initial_point_lora(config, experiment);
    load_parameters(checkpoint, config.method, init->names(), init->tensors());
  }
  model::ForwardOptions recompute = recompute_policy(config.model);
  const bool one_folder = run.tasks.size() == 1 && !run.all_held_out;
  std::vector<AdaptResult> results;
  for (const FoundTask& f : found) {
    if (interrupted()) break;
    const data::Task& task = *f.task;
    AdaptResult result;
    result.task = task.name;
    result.held_out = f.held_out;
    const data::EpisodeOptions options = adaptation_episode_options(config, experiment, task, result.held_out);
    Rng rng = data::episode_rng(static_cast<std::uint64_t>(config.run.seed), task.name, 0);
    const data::Episode episode = data::sample_episode(task, options, rng);
    result.support_size = episode.support.size();
    AdaptedTask adapted;
    adapted.task = task.name;
    adapted.method = std::string(to_string(config.method));
    if (theta)
      adapted.posterior = infer_task_posterior(config, experiment, *theta, episode, result.support_nll, recompute);
    else
      adapted.lora = adapt_task_lora(config, experiment, *init, episode, result.support_nll, recompute);
    log::info("task {}: support NLL {:.4f} -> {:.4f} ({}) after {} inner steps on {} shots", task.name,
              result.support_nll.front(), result.support_nll.back(),
              adapted.posterior ? "posterior mean" : "adapted LoRA", config.inner.eval_steps, result.support_size);

    result.folder = one_folder ? run.out : run.out / task.name;
    const AdaptedFolder folder = write_adapted_folder(result.folder, adapted, config, experiment, run.checkpoint);
    result.phi_file = folder.phi;
    result.adapter_dir = folder.adapter;
    written(result);
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace abmll::meta
