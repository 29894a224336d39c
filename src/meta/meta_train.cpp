#include "meta/meta_train.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cmath>

#include "data/episode.h"
#include "data/task_set.h"
#include "io/metrics_log.h"
#include "io/safetensors_writer.h"
#include "meta/abmll_objective.h"
#include "meta/adamw.h"
#include "meta/checkpoint.h"
#include "meta/episode_nll.h"
#include "meta/factor_gaussian.h"
#include "meta/lr_schedule.h"
#include "meta/run_setup.h"
#include "model/decoder.h"
#include "model/peft_adapter.h"
#include "text/tokenizer.h"
#include "util/device.h"
#include "util/error.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/rng.h"

namespace abmll::meta {
namespace {

// The config keys that change what is trained (a resume under other values would not continue the same run).
nlohmann::json training_keys(nlohmann::json config) {
  if (config.contains("run")) {
    for (const char* key : {"log_every", "checkpoint_every", "device"}) config["run"].erase(key);
  }
  return config;
}

void save(const std::filesystem::path& path, std::int64_t step, const LoraPosterior& theta, const AdamW& adam,
          const nlohmann::json& config) {
  Checkpoint c;
  c.step = step;
  const auto names = parameter_names(theta);
  const auto tensors = theta.tensors();
  for (size_t i = 0; i < names.size(); ++i) c.tensors.emplace_back("theta." + names[i], tensors[i].detach());
  for (size_t i = 0; i < names.size(); ++i) c.tensors.emplace_back("adamw.m." + names[i], adam.first_moments()[i]);
  for (size_t i = 0; i < names.size(); ++i) c.tensors.emplace_back("adamw.v." + names[i], adam.second_moments()[i]);
  c.metadata["adamw_steps"] = std::to_string(adam.steps_taken());
  c.metadata["config"] = training_keys(config).dump();
  c.metadata["method"] = "abmll";
  record_family(theta, c.metadata);
  save_checkpoint(path, c);
}

// Restores theta and AdamW from `c`, refusing a checkpoint of another training config.
void restore(const Checkpoint& c, LoraPosterior& theta, AdamW& adam, const nlohmann::json& config) {
  const auto saved = c.metadata.find("config");
  if (saved != c.metadata.end()) {
    const nlohmann::json then = nlohmann::json::parse(saved->second), now = training_keys(config);
    if (then != now) {
      std::string differences;
      for (const auto& d : nlohmann::json::diff(then, now)) differences.append(" ").append(d["path"].get<std::string>());
      throw InputError(fmt::format("{}: written under a different training config (differs at{}); resume with the "
                                   "same config, or start a new run folder",
                                   c.source.string(), differences));
    }
  }
  load_theta(c, theta);
  const auto names = parameter_names(theta);
  std::vector<at::Tensor> m, v;
  for (const auto& name : names) {
    m.push_back(c.tensor("adamw.m." + name));
    v.push_back(c.tensor("adamw.v." + name));
  }
  adam.restore(m, v, std::stoll(c.metadata.at("adamw_steps")));
}

void write_trace(const std::filesystem::path& path, std::int64_t step, const LoraPosterior& theta,
                 const MetaGradient& g, const EpisodeNll& nll, std::uint64_t noise_seed) {
  io::NamedTensors tensors;
  const auto names = parameter_names(theta);
  const auto params = theta.tensors();
  for (size_t i = 0; i < names.size(); ++i) tensors.emplace_back("theta." + names[i], params[i].detach());
  for (size_t i = 0; i < names.size(); ++i) tensors.emplace_back("grad." + names[i], g.grads[i].detach());
  for (const bool support : {true, false}) {
    std::vector<int64_t> prompt_ids, answer_ids, prompt_lengths, answer_lengths, task;
    for (size_t t = 0; t < nll.episodes().size(); ++t) {
      for (const auto& ex : support ? nll.episodes()[t].support : nll.episodes()[t].query) {
        prompt_ids.insert(prompt_ids.end(), ex.prompt.begin(), ex.prompt.end());
        answer_ids.insert(answer_ids.end(), ex.answer.begin(), ex.answer.end());
        prompt_lengths.push_back(static_cast<int64_t>(ex.prompt.size()));
        answer_lengths.push_back(static_cast<int64_t>(ex.answer.size()));
        task.push_back(static_cast<int64_t>(t));
      }
    }
    const std::string split = support ? "support" : "query";
    auto as_tensor = [](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); };
    tensors.emplace_back(split + ".prompt_ids", as_tensor(prompt_ids));
    tensors.emplace_back(split + ".answer_ids", as_tensor(answer_ids));
    tensors.emplace_back(split + ".prompt_lengths", as_tensor(prompt_lengths));
    tensors.emplace_back(split + ".answer_lengths", as_tensor(answer_lengths));
    tensors.emplace_back(split + ".task", as_tensor(task));
  }
  nlohmann::json support_nll = g.support_nll;
  io::write_safetensors(path, tensors,
                        {{"step", std::to_string(step)},
                         {"noise_seed", std::to_string(noise_seed)},
                         {"outer_loss", fmt::format("{:.17g}", g.outer_loss)},
                         {"query_nll", fmt::format("{:.17g}", g.query_nll)},
                         {"kl", fmt::format("{:.17g}", g.kl)},
                         {"hyperprior", fmt::format("{:.17g}", g.hyperprior)},
                         {"support_nll", support_nll.dump()},
                         {"posterior_family", theta.description()},
                         {"scale_floor_hits", std::to_string(g.floor.hits)}});
}

// The weight family's scale floor (ABMLL.md 2(b)): entries of S (posteriors and prior) at the floor c in the
// step's KLs, inner and outer, and their fraction.
void add_floor_metrics(nlohmann::json& line, const FloorStats& floor) {
  line["scale_floor_hits"] = floor.hits;
  line["scale_floor_fraction"] =
      floor.entries > 0 ? static_cast<double>(floor.hits) / static_cast<double>(floor.entries) : 0.0;
}

}  // namespace

MetaTrainResult meta_train(const ExperimentConfig& config, const MetaTrainRun& run) {
  const DeviceChoice device = resolve_device(config.run.device);
  const auto start = std::chrono::steady_clock::now();

  const LoadedExperiment experiment = load_experiment(config, device.name);
  const model::Decoder& decoder = experiment.decoder;
  const text::Tokenizer& tokenizer = experiment.tokenizer;
  const data::TaskSet& tasks = experiment.tasks;
  const model::LoraSettings& lora = experiment.lora;
  if (tasks.train.empty()) throw InputError("data: the partition has no training tasks");
  const std::int64_t per_batch = config.outer.tasks_per_batch;
  if (per_batch > static_cast<std::int64_t>(tasks.train.size()))
    throw InputError(fmt::format("outer.tasks_per_batch ({}) exceeds the number of training tasks ({})", per_batch,
                                 tasks.train.size()));
  const std::uint64_t seed = static_cast<std::uint64_t>(config.run.seed);
  LoraPosterior theta = initial_theta(config, experiment);
  AdamW adam(theta.tensors(), {0.9, 0.999, 1e-8, config.outer.weight_decay});

  MetaTrainResult result;
  if (run.resume) {
    if (auto c = load_latest_checkpoint(run.run_dir)) {
      restore(*c, theta, adam, run.resolved_config);
      result.first_step = c->step;
      log::info("resuming from {} (step {})", c->source.string(), c->step);
    } else {
      log::warn("--resume: no checkpoint in {}; starting from step 0", run.run_dir.string());
    }
  }
  const std::int64_t total = config.outer.steps;
  const std::int64_t last = run.max_steps > 0 ? std::min(run.max_steps, total) : total;
  io::MetricsLog metrics(run.run_dir / "metrics.jsonl", result.first_step);

  data::EpisodeOptions episode_options = data::episode_options(config.data);
  episode_options.tokenizer = &tokenizer;
  episode_options.max_length = config.model.max_length;
  const InnerLoop inner{config.inner.steps, config.inner.lr, config.inner.optimizer, config.inner.first_step_nll_only,
                        config.inner.samples, config.outer.beta};
  const OuterObjective outer{config.outer.beta,
                             config.outer.gamma,
                             static_cast<double>(tasks.train.size()),
                             config.outer.second_order,
                             config.outer.outer_includes_support,
                             config.posterior.hyperprior_mean_std,
                             config.posterior.hyperprior_a0,
                             config.posterior.hyperprior_b0};

  model::ScoringOptions scoring;
  scoring.forward.checkpoint_layers = config.model.gradient_checkpointing;
  scoring.forward.double_backward = config.outer.second_order;  // the inner steps' backward is differentiated again

  Progress progress("meta-train", last - result.first_step, 10.0, config.run.log_every);
  std::int64_t step = result.first_step;
  for (; step < last; ++step) {
    const auto step_start = std::chrono::steady_clock::now();
    // Step s's tasks, episodes and noise depend on (seed, s) only.
    Rng task_rng = Rng::stream(seed, fmt::format("tasks/{}", step));
    std::vector<TokenizedEpisode> episodes;
    for (std::size_t index : task_rng.sample(tasks.train.size(), static_cast<std::size_t>(per_batch))) {
      const data::Task& task = tasks.train[index];
      data::EpisodeOptions o = episode_options;
      const data::EpisodeSplits splits = data::episode_splits(task, /*held_out=*/false);
      o.support_split = splits.support;
      o.query_split = splits.query;
      Rng rng = data::episode_rng(seed, task.name, step);
      episodes.push_back(tokenize_episode(data::sample_episode(task, o, rng), tokenizer));
    }
    EpisodeNll nll(decoder, lora, std::move(episodes), scoring);
    const std::uint64_t noise_seed = Rng::stream(seed, fmt::format("noise/{}", step)).next_u64();
    auto noise = at::make_generator<at::CPUGeneratorImpl>(noise_seed);
    MetaGradient g = abmll_meta_gradient(
        theta, per_batch, [&nll](model::LinearAdapter& a, int64_t s, Split split) { return nll(a, s, split); }, inner,
        outer, noise);
    if (step + 1 == run.trace_step)
      write_trace(run.run_dir / fmt::format("trace-step-{}.safetensors", step + 1), step + 1, theta, g, nll,
                  noise_seed);
    const double grad_norm = clip_global_norm(g.grads, config.outer.grad_clip);
    if (!std::isfinite(g.outer_loss) || !std::isfinite(grad_norm)) {
      result.checkpoint = checkpoint_path(run.run_dir, step);
      save(result.checkpoint, step, theta, adam, run.resolved_config);
      throw Error(fmt::format("non-finite {} at step {} (outer loss {}, gradient norm {}); the last good state is "
                              "saved in {}",
                              std::isfinite(g.outer_loss) ? "gradient" : "loss", step + 1, g.outer_loss, grad_norm,
                              result.checkpoint.string()));
    }
    const double lr = learning_rate(step, total, config.outer.warmup_steps, config.outer.lr, config.outer.schedule);
    adam.step(g.grads, lr);

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    result.tokens += nll.tokens_processed();
    nlohmann::json line = {{"step", step + 1},
                           {"outer_loss", g.outer_loss},
                           {"query_nll", g.query_nll},
                           {"kl", g.kl},
                           {"hyperprior", g.hyperprior},
                           {"support_nll_first", g.support_nll.empty() ? g.query_nll : g.support_nll.front()},
                           {"support_nll_last", g.support_nll.empty() ? g.query_nll : g.support_nll.back()},
                           {"grad_norm", grad_norm},
                           {"lr", lr},
                           {"tokens_per_s", nll.tokens_processed() / seconds},
                           {"elapsed_s",
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
    if (theta.family() == PosteriorFamily::weight) add_floor_metrics(line, g.floor);
    metrics.append(line);
    result.last_outer_loss = g.outer_loss;
    progress.update(step + 1 - result.first_step,
                    fmt::format("loss {:.4f} query NLL {:.4f} KL {:.3g} grad norm {:.3g} lr {:.3g}", g.outer_loss,
                                g.query_nll, g.kl, grad_norm, lr));

    const bool stop = interrupted();
    const bool periodic = config.run.checkpoint_every > 0 && (step + 1) % config.run.checkpoint_every == 0;
    if (periodic || stop || step + 1 == last) {
      result.checkpoint = checkpoint_path(run.run_dir, step + 1);
      save(result.checkpoint, step + 1, theta, adam, run.resolved_config);
    }
    if (stop) {
      result.interrupt_signal = interrupt_signal();
      ++step;
      break;
    }
  }
  result.steps_done = step;
  progress.finish(fmt::format("loss {:.4f}", result.last_outer_loss));

  if (result.interrupt_signal == 0) {
    model::BatchedLora mean_adapter = theta.mean_adapter();
    result.adapter = run.run_dir / "adapter";
    model::write_peft_adapter(result.adapter, mean_adapter, decoder.config(), 0, config.model.path);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace abmll::meta
