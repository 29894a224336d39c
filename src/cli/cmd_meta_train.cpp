// `abmll meta-train`: learns the prior theta over LoRA adapters across training tasks (ABMLL.md section 3).
// This build loads and validates the config, resolves the device, writes the run folder (resolved config,
// report) and states the run it would make; the training loop arrives with the model and ABMLL layers.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/config_loader.h"
#include "io/report.h"
#include "util/atomic_file.h"
#include "util/device.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

struct MetaTrainFlags {
  ConfigFlags config;
  std::string out;
  bool resume = false;
  std::int64_t max_steps = 0;
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
  const DeviceChoice device = resolve_device(config->run.device);
  const std::int64_t steps = flags.max_steps > 0 ? std::min(flags.max_steps, config->outer.steps) : config->outer.steps;
  const auto out = output_folder(flags.out, flags.config, "meta-train");

  write_file_atomic(out / "config.yaml", config_to_yaml(*config));
  describe_plan(*config, steps, device);
  log::warn("meta-training is not implemented in this build yet: the config is valid, nothing was trained");

  Report report("meta-train", command_line());
  report.set_config(config_to_json(*config));
  report.set_device(device.name, device.description);
  report.set_result("status", "planned");
  report.set_result("outer_steps", steps);
  report.set_result("resume", flags.resume);
  report.write(out / "report.json");
  log::info("wrote {} and {}", (out / "config.yaml").string(), (out / "report.json").string());
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
      ->check(CLI::PositiveNumber);
  return {cmd, [flags] { return run_meta_train(*flags); }};
}

}  // namespace abmll::cli
