#include "meta/meta_train.h"

#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <ATen/core/grad_mode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "data/episode.h"
#include "data/task_set.h"
#include "io/metrics_log.h"
#include "io/safetensors_writer.h"
#include "meta/abmll_objective.h"
#include "meta/meta_learner.h"
#include "meta/adamw.h"
#include "meta/checkpoint.h"
#include "meta/data_parallel.h"
#include "meta/episode_nll.h"
#include "meta/factor_gaussian.h"
#include "meta/lr_schedule.h"
#include "meta/recompute_retry.h"
#include "meta/run_setup.h"
#include "meta/task_noise.h"
#include "meta/validation.h"
#include "model/decoder.h"
#include "model/peft_adapter.h"
#include "text/tokenizer.h"
#include "util/device.h"
#include "util/error.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/peak_memory.h"
#include "util/progress.h"
#include "util/rng.h"
#include "util/step_profiler.h"
#include "util/torch_errors.h"

namespace abmll::meta {
namespace {

// The config keys that change what is trained (a resume under other values would not continue the same run). Which
// layers are recomputed in backward changes memory, not results: a run that ran out of memory resumes with more
// recomputation. Nor does validation change theta.
nlohmann::json training_keys(nlohmann::json config) {
  if (config.contains("run")) {
    for (const char* key : {"log_every", "checkpoint_every", "device", "dist_timeout_s"}) config["run"].erase(key);
  }
  if (config.contains("model") && config["model"].is_object()) {
    for (const char* key : {"gradient_checkpointing", "checkpointed_layers", "recompute_on_oom"})
      config["model"].erase(key);
  }
  config.erase("validation");  // watches the run without changing it
  return config;
}

void save(const std::filesystem::path& path, std::int64_t step, const MetaLearner& learner, const AdamW& adam,
          Method method, const nlohmann::json& config, const std::map<std::string, std::string>& extra) {
  Checkpoint c;
  c.metadata = extra;
  c.step = step;
  const auto names = learner.parameter_names();
  const auto tensors = learner.parameters();
  for (size_t i = 0; i < names.size(); ++i) c.tensors.emplace_back("theta." + names[i], tensors[i].detach());
  for (size_t i = 0; i < names.size(); ++i) c.tensors.emplace_back("adamw.m." + names[i], adam.first_moments()[i]);
  for (size_t i = 0; i < names.size(); ++i) c.tensors.emplace_back("adamw.v." + names[i], adam.second_moments()[i]);
  c.metadata["adamw_steps"] = std::to_string(adam.steps_taken());
  c.metadata["config"] = training_keys(config).dump();
  c.metadata["method"] = to_string(method == Method::abmll_icl ? Method::abmll : method);
  learner.record(c.metadata);
  save_checkpoint(path, c);
}

// Restores theta and AdamW from `c`, refusing a checkpoint of another training config.
void restore(const Checkpoint& c, MetaLearner& learner, AdamW& adam, const nlohmann::json& config) {
  const auto saved = c.metadata.find("config");
  if (saved != c.metadata.end()) {
    nlohmann::json then = nlohmann::json::parse(saved->second, nullptr, /*allow_exceptions=*/false);
    if (!then.is_object())
      throw InputError(fmt::format("{}: its metadata's training config is not a JSON object", c.source.string()));
    then = training_keys(std::move(then));
    const nlohmann::json now = training_keys(config);
    // Checkpoints from before model.tf32 existed ran full float32 products: resumable with model.tf32 = false.
    if (then.contains("model") && then["model"].is_object() && !then["model"].contains("tf32"))
      then["model"]["tf32"] = false;
    // Nor model.cuda_kernels: those ran the weight family's KL kernel and ATen's ops otherwise, which neither value
    // reproduces exactly on a GPU (and both do on the CPU); they resume under either.
    if (then.contains("model") && then["model"].is_object() && !then["model"].contains("cuda_kernels") &&
        now.contains("model") && now["model"].contains("cuda_kernels"))
      then["model"]["cuda_kernels"] = now["model"]["cuda_kernels"];
    if (then != now) {
      std::string differences;
      for (const auto& d : nlohmann::json::diff(then, now)) differences.append(" ").append(d["path"].get<std::string>());
      throw InputError(fmt::format("{}: written under a different training config (differs at{}); resume with the "
                                   "same config, or start a new run folder",
                                   c.source.string(), differences));
    }
  }
  learner.load(c);
  const auto names = learner.parameter_names();
  std::vector<at::Tensor> m, v;
  for (const auto& name : names) {
    m.push_back(c.tensor("adamw.m." + name));
    v.push_back(c.tensor("adamw.v." + name));
  }
  adam.restore(m, v, c.count("adamw_steps"));
}

void write_trace(const std::filesystem::path& path, std::int64_t step, const MetaLearner& learner,
                 const MetaBatchGradient& g, const EpisodeNll& nll, const std::vector<std::uint64_t>& noise_seeds) {
  io::NamedTensors tensors;
  const auto names = learner.parameter_names();
  const auto params = learner.parameters();
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
  std::map<std::string, std::string> metadata{{"step", std::to_string(step)},
                                              {"noise_seeds", nlohmann::json(noise_seeds).dump()},
                                              {"outer_loss", fmt::format("{:.17g}", g.loss)}};
  if (g.query_nll) metadata["query_nll"] = fmt::format("{:.17g}", *g.query_nll);
  metadata["support_nll"] = nlohmann::json(g.support_nll).dump();
  for (const auto& [key, value] : g.extra.items()) metadata[key] = fmt::format("{:.17g}", value.get<double>());
  for (const auto& [key, value] : g.counts.items()) metadata[key] = value.dump();
  learner.record(metadata);
  io::write_safetensors(path, tensors, metadata);
}

}  // namespace

MetaTrainResult meta_train(const ExperimentConfig& config, const MetaTrainRun& run) {
  const DeviceChoice device = resolve_device(config.run.device);
  const auto start = std::chrono::steady_clock::now();

  const LoadedExperiment experiment = load_experiment(config, device.name);
  const model::Decoder& decoder = experiment.decoder;
  const text::Tokenizer& tokenizer = experiment.tokenizer;
  const data::TaskSet& tasks = experiment.tasks;
  if (tasks.train.empty()) throw InputError("data: the partition has no training tasks");
  const std::int64_t per_batch = config.outer.tasks_per_batch;
  if (per_batch > static_cast<std::int64_t>(tasks.train.size()))
    throw InputError(fmt::format("outer.tasks_per_batch ({}) exceeds the number of training tasks ({})", per_batch,
                                 tasks.train.size()));
  const std::uint64_t seed = static_cast<std::uint64_t>(config.run.seed);
  // Data parallelism: this rank runs `slice` of each step's tasks; rank 0 alone writes files.
  const int rank = run.group ? run.group->rank() : 0, world = run.group ? run.group->size() : 1;
  const bool writer = rank == 0;
  if (world > per_batch)
    throw InputError(fmt::format("outer.tasks_per_batch ({}) is below the number of ranks ({}): every rank needs at "
                                 "least one task of each meta-batch",
                                 per_batch, world));
  if (world > 1 && run.trace_step > 0)
    throw InputError("--trace-step: single-process runs only (a step's tasks are spread over the ranks)");
  const TaskSlice slice = task_slice(per_batch, rank, world);
  const std::unique_ptr<MetaLearner> learner = make_meta_learner(config, experiment);
  AdamW adam(learner->parameters(), {0.9, 0.999, 1e-8, config.outer.weight_decay});

  Validator validator(config, experiment, run.group);
  ValidationState validation;

  MetaTrainResult result;
  if (run.resume) {
    if (auto c = load_latest_checkpoint(run.run_dir)) {
      restore(*c, *learner, adam, run.resolved_config);
      validation = validator.restore(c->metadata, c->source.string());
      result.first_step = c->step;
      result.checkpoint = c->source;
      log::info("resuming from {} (step {})", c->source.string(), c->step);
    } else {
      log::warn("--resume: no checkpoint in {}; starting from step 0", run.run_dir.string());
    }
  }
  if (run.group) check_same_start(*run.group, result.first_step);
  const std::int64_t total = config.outer.steps;
  const std::int64_t last = run.max_steps > 0 ? std::min(run.max_steps, total) : total;
  std::optional<io::MetricsLog> metrics, validation_log;
  if (writer) metrics.emplace(run.run_dir / "metrics.jsonl", result.first_step);
  if (writer && validator.enabled())
    validation_log.emplace(run.run_dir / "validation.jsonl", result.first_step > 0 ? result.first_step : -1);
  auto save_to = [&](const std::filesystem::path& path, std::int64_t step) {
    std::map<std::string, std::string> extra;
    validator.record(validation, extra);
    if (writer) save(path, step, *learner, adam, config.method, run.resolved_config, extra);
  };
  auto save_at = [&](std::int64_t step) {
    result.checkpoint = checkpoint_path(run.run_dir, step);
    save_to(result.checkpoint, step);
  };
  auto export_adapter = [&](const std::filesystem::path& dir) {
    model::BatchedLora exported(experiment.lora, 1);
    install_factors(exported, learner->exported_factors());
    model::write_peft_adapter(dir, exported, decoder.config(), 0, config.model.path);
  };
  // Validates theta after `step` outer steps; keeps the checkpoint and adapter of the best validation.
  const std::filesystem::path best_checkpoint = run.run_dir / "checkpoints" / "best.safetensors";
  const std::filesystem::path best_adapter = run.run_dir / "adapter-best";
  auto validate = [&](std::int64_t step) {
    const nlohmann::json line = validator.validate(step, learner->adaptation_start(), validation);
    if (line["best"].get<bool>() && config.validation.keep_best) {
      save_to(best_checkpoint, step);  // records the state that names this step the best
      if (writer) export_adapter(best_adapter);
    }
    if (validation_log) validation_log->append(line);
  };

  data::EpisodeOptions episode_options = data::episode_options(config.data);
  episode_options.tokenizer = &tokenizer;
  episode_options.max_length = config.model.max_length;
  model::ScoringOptions scoring;
  scoring.forward = recompute_policy(config.model);
  scoring.forward.double_backward = learner->second_order();  // the inner steps' backward is differentiated again

  // A run interrupted at a validation step saved its checkpoint first and validates on resuming.
  if (validator.due(result.first_step, last) && validation.last_step < result.first_step) validate(result.first_step);
  // validation.patience: the run ends once that many validations in a row bring no new best.
  bool out_of_patience = validator.out_of_patience(validation);
  auto log_out_of_patience = [&](std::int64_t step) {
    log::info("validation.patience: the {} validations after the best one (step {}) brought no better one; the run "
              "ends at step {}",
              validation.since_best, *validation.best_step, step);
  };
  if (out_of_patience) log_out_of_patience(result.first_step);

  TokenizedEpisodeSampler episode_sampler(tokenizer);
  Progress progress("meta-train", last - result.first_step, 10.0, config.run.log_every);
  std::int64_t step = result.first_step;
  std::optional<StepProfiler> profiler;
  std::int64_t profile_first = 0;
  bool profiling_over = false;
  const std::int64_t profile_last = run.profile_step + std::max<std::int64_t>(run.profile_steps, 1) - 1;
  for (; step < last && !out_of_patience; ++step) {
    if (run.profile_step > 0 && !profiler && !profiling_over && step + 1 >= run.profile_step &&
        step + 1 <= profile_last) {
      try {  // a profiler that cannot start (e.g. no CUPTI) costs the profile, not the run
        profiler.emplace(decoder.device(), run.profile_memory);
        profile_first = step + 1;
      } catch (const std::exception& e) {
        log::warn("--profile-step: the profiler did not start ({}); continuing without it", e.what());
        profiling_over = true;
      }
    }
    const auto step_start = std::chrono::steady_clock::now();
    // Step s's tasks, episodes and noise depend on (seed, s) only, so a retried step computes what its first try
    // would have.
    auto step_episodes = [&] {
      Rng task_rng = Rng::stream(seed, fmt::format("tasks/{}", step));
      std::vector<TokenizedEpisode> episodes;
      const auto picked = task_rng.sample(tasks.train.size(), static_cast<std::size_t>(per_batch));
      for (std::int64_t position = slice.begin; position < slice.begin + slice.count; ++position) {
        const data::Task& task = tasks.train[picked[position]];
        data::EpisodeOptions o = episode_options;
        const data::EpisodeSplits splits = data::episode_splits(task, /*held_out=*/false);
        o.support_split = splits.support;
        o.query_split = splits.query;
        Rng rng = data::episode_rng(seed, task.name, step);
        episodes.push_back(episode_sampler.sample(task, o, rng));
      }
      return episodes;
    };
    std::optional<EpisodeNll> nll;
    MetaBatchGradient g;
    try {
      g = retry_with_more_recomputation(
          scoring.forward, decoder.config().num_layers, device.name, config.model.recompute_on_oom,
          fmt::format("step {}", step + 1), [&] {
            nll.emplace(decoder, experiment.lora, step_episodes(), scoring);
            return learner->meta_gradient(
                [&nll](model::LinearAdapter& a, int64_t s, Split split) { return (*nll)(a, s, split); }, slice.count,
                step_noise(seed, step, slice.begin, slice.count));
          });
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
      // Nothing of this step was applied: theta and AdamW hold the state after the previous step.
      std::string saved;
      if (world == 1 && step > result.first_step) {
        save_at(step);
        saved = fmt::format(" The state after step {} is saved in {}: --resume continues the run exactly (with "
                            "more recomputation, or on a device with more memory).",
                            step, result.checkpoint.string());
      }
      std::string why = message_of(e);
      if (why.empty() || why.back() != '.') why += '.';
      throw Error(fmt::format("out of memory in step {} on {} with {}: {}{} Less memory per step: {}fewer rows or "
                              "tokens per forward (outer.tasks_per_batch, data.shots, data.query_size, inner.samples, "
                              "model.max_length: a new run); `--profile-step {} --profile-memory` shows what holds "
                              "memory at the peak",
                              step + 1, device.name,
                              model::describe_policy(scoring.forward, decoder.config().num_layers), why, saved,
                              more_recomputation_hint(scoring.forward, decoder.config().num_layers), step + 1));
    }
    std::int64_t step_tokens = nll->tokens_processed();
    int signal = interrupt_signal();
    double sync_seconds = 0;  // in the step's collectives: communication plus waiting for the slowest rank
    if (run.group) {
      const auto sync_start = std::chrono::steady_clock::now();
      const StepAgreement agreed =
          combine_across_ranks(*run.group, g, slice.count, per_batch, step_tokens, signal, step + 1);
      step_tokens = agreed.tokens;
      signal = agreed.signal;
      sync_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sync_start).count();
    }
    if (step + 1 == run.trace_step) {
      std::vector<std::uint64_t> noise_seeds;
      for (std::int64_t p = 0; p < per_batch; ++p) noise_seeds.push_back(task_noise_seed(seed, step, p));
      write_trace(run.run_dir / fmt::format("trace-step-{}.safetensors", step + 1), step + 1, *learner, g, *nll,
                  noise_seeds);
    }
    const double grad_norm = clip_global_norm(g.grads, config.outer.grad_clip);
    if (!std::isfinite(g.loss) || !std::isfinite(grad_norm)) {
      save_at(step);
      throw Error(fmt::format("non-finite {} at step {} (outer loss {}, gradient norm {}); the last good state is "
                              "saved in {}",
                              std::isfinite(g.loss) ? "gradient" : "loss", step + 1, g.loss, grad_norm,
                              result.checkpoint.string()));
    }
    const double lr = learning_rate(step, total, config.outer.warmup_steps, config.outer.lr, config.outer.schedule);
    adam.step(g.grads, lr);

    if (profiler && (step + 1 == profile_last || step + 1 == last || interrupted())) {
      std::string stem = fmt::format("steps-{}-{}", profile_first, step + 1);
      if (world > 1) stem += fmt::format(".rank-{}", rank);
      const std::filesystem::path path = run.run_dir / "profile" / stem;
      try {
        const std::int64_t peak = profiler->finish(path);
        if (run.profile_memory)
          log::info("profile of steps {}-{}: {}.ops.tsv, .memory.tsv (peak {:.1f} MB above the profile's start) and "
                    ".trace.json",
                    profile_first, step + 1, path.string(), static_cast<double>(peak) / 1048576.0);
        else
          log::info("profile of steps {}-{}: {}.ops.tsv and .trace.json", profile_first, step + 1, path.string());
      } catch (const std::exception& e) {
        log::warn("--profile-step: the profile could not be written ({})", e.what());
      }
      profiler.reset();
      profiling_over = true;  // one profile per run
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    result.tokens += step_tokens;
    nlohmann::json line = {{"step", step + 1}, {"outer_loss", g.loss}};
    if (g.query_nll) line["query_nll"] = *g.query_nll;
    for (const auto& [key, value] : g.extra.items()) line[key] = value;
    for (const auto& [key, value] : g.counts.items()) line[key] = value;
    if (!g.support_nll.empty()) {
      line["support_nll_first"] = g.support_nll.front();
      line["support_nll_last"] = g.support_nll.back();
    }
    line["grad_norm"] = grad_norm;
    line["lr"] = lr;
    line["tokens_per_s"] = static_cast<double>(step_tokens) / seconds;
    line["elapsed_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    line["peak_memory_mb"] = peak_memory_mb(device.name);
    if (const auto reserved = peak_reserved_mb(device.name)) line["peak_reserved_mb"] = *reserved;
    if (run.group) line["sync_s"] = sync_seconds;
    if (metrics) metrics->append(line);
    result.last_outer_loss = g.loss;
    std::string status = fmt::format("loss {:.4f}", g.loss);
    if (g.query_nll) status += fmt::format(" query NLL {:.4f}", *g.query_nll);
    if (g.extra.contains("kl")) status += fmt::format(" KL {:.3g}", g.extra["kl"].get<double>());
    progress.update(step + 1 - result.first_step, status + fmt::format(" grad norm {:.3g} lr {:.3g}", grad_norm, lr));

    // Every rank stops at the same step: signals are combined with the step's losses.
    const bool stop = run.group ? signal != 0 : interrupted();
    // An interrupted run stops without validating (which may take minutes); it validates when resumed.
    if (!stop && validator.due(step + 1, last)) {
      validate(step + 1);
      out_of_patience = validator.out_of_patience(validation);
    }
    const bool periodic = config.run.checkpoint_every > 0 && (step + 1) % config.run.checkpoint_every == 0;
    if (periodic || stop || out_of_patience || step + 1 == last) save_at(step + 1);
    if (out_of_patience) {
      log_out_of_patience(step + 1);
      ++step;
      break;
    }
    if (stop) {
      result.interrupt_signal = run.group ? signal : interrupt_signal();
      ++step;
      break;
    }
  }
  result.steps_done = step;
  if (validator.enabled()) {
    result.validation = validator.summary(validation);
    if (out_of_patience) result.validation["stopped_early"] = true;
    if (validation.best_step) {
      if (config.validation.keep_best) {
        result.validation["best_checkpoint"] = best_checkpoint.string();
        result.validation["best_adapter"] = best_adapter.string();
      }
      log::info("best validation: step {} ({} {:.4f}){}", *validation.best_step, to_string(config.validation.metric),
                validation.best_value, config.validation.keep_best ? ", kept as " + best_checkpoint.string() : "");
    }
  }
  progress.finish(fmt::format("loss {:.4f}", result.last_outer_loss));

  if (result.interrupt_signal == 0 && writer) {
    result.adapter = run.run_dir / "adapter";
    export_adapter(result.adapter);
  }
  // Rank 0 serves the rendezvous store: it leaves last, once every rank has finished.
  if (run.group) run.group->barrier("the end of the run");
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace abmll::meta
