// `abmll meta-train`: learns the prior theta over LoRA adapters across training tasks (ABMLL.md section 3) and
// writes the run folder (see meta/meta_train.h), plus the resolved config and a report.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/distributed.h"
#include "config/config_loader.h"
#include "dist/launch_env.h"
#include "io/report.h"
#include "meta/meta_train.h"
#include "util/atomic_file.h"
#include "util/device.h"
#include "util/error.h"
#include "util/folder_lock.h"
#include "util/interrupt.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

// A step number or count: a whole number >= 1 (CLI::PositiveNumber would say "Value 0 not in range 0.000000 to
// 1.8e308").
const CLI::Validator kPositiveInteger(
    [](std::string& text) -> std::string {
      std::size_t used = 0;
      long long value = 0;
      try {
        value = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != text.size() || value < 1) return "must be a whole number of at least 1, got '" + text + "'";
      return {};
    },
    "N>=1");

struct MetaTrainFlags {
  ConfigFlags config;
  std::string out;
  bool resume = false;
  std::int64_t max_steps = 0;
  std::int64_t trace_step = 0;
  std::int64_t profile_step = 0, profile_steps = 1;
  bool profile_memory = false;
  std::string dist_backend = "auto";
};

void describe_plan(const ExperimentConfig& c, std::int64_t steps, const DeviceChoice& device) {
  const double scaling = c.lora.rslora ? c.lora.alpha / std::sqrt(double(c.lora.rank)) : c.lora.alpha / c.lora.rank;
  log::info("plan: method {} on {}", to_string(c.method), device.description);
  log::info("plan: model {} (dtype {}), LoRA r={} alpha={} (scale {:.4g}) on {}", c.model.path,
            to_string(c.model.dtype), c.lora.rank, c.lora.alpha, scaling, fmt::join(c.lora.targets, ", "));
  log::info("plan: posterior family {} (scale {}, floor c={:.3g})", to_string(c.posterior.family),
            to_string(c.posterior.weight_scale), c.posterior.scale_floor);
  log::info("plan: data {} at {}{}, {} support + {} query examples per task", to_string(c.data.format), c.data.path,
            c.data.partition.empty() ? "" : fmt::format(" (partition {})", c.data.partition), c.data.shots,
            c.data.query_size);
  log::info("plan: {} outer steps x {} tasks, AdamW lr {:.3g} ({} schedule, {} warm-up steps), clip {:.3g}, "
            "beta {:.3g}, gamma {:.3g}, {} order",
            steps, c.outer.tasks_per_batch, c.outer.lr, to_string(c.outer.schedule), c.outer.warmup_steps,
            c.outer.grad_clip, c.outer.beta, c.outer.gamma, c.outer.second_order ? "second" : "first");
  log::info("plan: {} inner {} steps per task at lr {:.3g}, {} Monte Carlo sample(s)", c.inner.steps,
            to_string(c.inner.optimizer), c.inner.lr, c.inner.samples);
}

int run_meta_train(const MetaTrainFlags& flags) {
  auto config = load_config(flags.config);
  if (!config) return 0;
  const dist::LaunchEnv launch = dist::read_launch_env(dist::process_environment());
  const bool writer = launch.rank == 0;  // rank 0 alone writes the run folder's files
  tag_rank_logs(launch);
  DeviceChoice device = resolve_device(config->run.device);
  const std::int64_t steps = flags.max_steps > 0 ? std::min(flags.max_steps, config->outer.steps) : config->outer.steps;
  const auto out = output_folder(flags.out, flags.config, "meta-train");
  // One process writes a run folder at a time (rank 0 of a distributed run).
  std::optional<FolderLock> lock;
  if (writer) lock.emplace(out, "meta-train");
  if (!flags.resume && std::filesystem::exists(out / "checkpoints"))
    throw InputError(fmt::format("{} already holds checkpoints: pass --resume to continue that run, or choose "
                                 "another --out",
                                 out.string()));
  install_interrupt_handlers();
  const std::unique_ptr<dist::ProcessGroup> group = join_process_group(launch, flags.dist_backend, *config, device);
  if (writer) write_file_atomic(out / "config.yaml", config_to_yaml(*config));
  describe_plan(*config, steps, device);

  Report report("meta-train", command_line());
  report.set_config(config_to_json(*config));
  report.set_device(device.name, device.description);
  meta::MetaTrainRun run{out, flags.resume, flags.max_steps, config_to_json(*config), flags.trace_step};
  run.profile_step = flags.profile_step;
  run.profile_steps = flags.profile_steps;
  run.profile_memory = flags.profile_memory;
  run.group = group.get();
  const meta::MetaTrainResult result = meta::meta_train(*config, run);

  report.set_result("status", result.interrupt_signal ? "interrupted" : "completed");
  report.set_result("first_step", result.first_step);
  report.set_result("steps_done", result.steps_done);
  report.set_result("last_outer_loss", result.last_outer_loss);
  report.set_result("checkpoint", result.checkpoint.string());
  report.set_result("adapter", result.adapter.string());
  report.set_result("tokens", result.tokens);
  if (!result.validation.is_null()) report.set_result("validation", result.validation);
  report.add_timing("meta_train_seconds", result.seconds);
  if (launch.distributed()) report.set_result("ranks", launch.world_size);
  if (writer) report.write(out / "report.json");
  if (result.interrupt_signal) {
    log::warn("interrupted after step {}; resume with --resume (checkpoint {})", result.steps_done,
              result.checkpoint.string());
    return interrupt_exit_code(result.interrupt_signal);
  }
  log::info("done: {} steps, checkpoint {}, PEFT adapter {}", result.steps_done, result.checkpoint.string(),
            result.adapter.string());
  return 0;
}

}  // namespace

Command register_meta_train(CLI::App& root) {
  auto flags = std::make_shared<MetaTrainFlags>();
  CLI::App* cmd = root.add_subcommand("meta-train", "Meta-train a prior over LoRA adapters across tasks (ABMLL)");
  add_config_flags(*cmd, flags->config);
  cmd->add_option("-o,--out", flags->out, "Run folder (default: runs/<config name>/meta-train)")->type_name("DIR");
  cmd->add_flag("--resume", flags->resume, "Continue from the newest complete checkpoint in the run folder");
  cmd->add_option("--max-steps", flags->max_steps, "Stop after this many outer steps (quick runs)")
      ->check(kPositiveInteger);
  cmd->add_option("--trace-step", flags->trace_step,
                  "Write step N's inputs, losses and theta gradient to DIR/trace-step-N.safetensors (debugging)")
      ->check(kPositiveInteger);
  CLI::Option* profile_step = cmd->add_option("--profile-step", flags->profile_step,
                  "Profile outer steps N.. with LibTorch's profiler: DIR/profile/steps-N-M.ops.tsv (time per operator "
                  "and GPU kernel) and .trace.json (Chrome trace). Profiled steps run slower")
      ->check(kPositiveInteger)
      ->type_name("N");
  cmd->add_option("--profile-steps", flags->profile_steps, "How many steps --profile-step covers (default 1)")
      ->check(kPositiveInteger)
      ->type_name("COUNT")
      ->needs(profile_step);
  cmd->add_flag("--profile-memory", flags->profile_memory,
                "With --profile-step: record allocations too, and write DIR/profile/steps-N-M.memory.tsv: what is "
                "live at the profiled steps' peak (the GPU's on a GPU), per operator that allocated it")
      ->needs(profile_step);
  add_dist_backend_flag(*cmd, flags->dist_backend);
  return {cmd, [flags] { return run_meta_train(*flags); }};
}

}  // namespace abmll::cli
