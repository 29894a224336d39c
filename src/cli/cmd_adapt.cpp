// `abmll adapt`: infers a task's adapter posterior phi from its support set, starting from a meta-trained prior
// theta (see meta/adapt.h), and writes phi and its posterior-mean PEFT adapter.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/config_loader.h"
#include "io/report.h"
#include "meta/adapt.h"
#include "meta/checkpoint.h"
#include "util/atomic_file.h"
#include "util/device.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

struct AdaptFlags {
  ConfigFlags config;
  std::string checkpoint, task, out;
};

int run_adapt(const AdaptFlags& flags) {
  auto config = load_config(flags.config);
  if (!config) return 0;
  if (flags.checkpoint.empty() || flags.task.empty() || flags.out.empty())
    throw InputError("adapt needs --checkpoint, --task and --out");
  const meta::AdaptRun run{meta::resolve_checkpoint(flags.checkpoint), flags.task, flags.out};
  Report report("adapt", command_line());
  report.set_config(config_to_json(*config));
  const DeviceChoice device = resolve_device(config->run.device);
  report.set_device(device.name, device.description);
  const meta::AdaptResult result = meta::adapt_task(*config, run);
  write_file_atomic(run.out / "config.yaml", config_to_yaml(*config));
  report.set_result("task", flags.task);
  report.set_result("held_out", result.held_out);
  report.set_result("support_size", result.support_size);
  report.set_result("support_nll", result.support_nll);
  report.set_result("phi", result.phi_file.string());
  report.set_result("adapter", result.adapter_dir.string());
  report.write(run.out / "report.json");
  log::info("wrote {} and {}", result.phi_file.string(), result.adapter_dir.string());
  return 0;
}

}  // namespace

Command register_adapt(CLI::App& root) {
  auto flags = std::make_shared<AdaptFlags>();
  CLI::App* cmd = root.add_subcommand("adapt", "Infer a task's adapter posterior from its few shots");
  add_config_flags(*cmd, flags->config);
  // Checked in run_adapt rather than marked required, so that --help-config works without them.
  cmd->add_option("--checkpoint", flags->checkpoint,
                  "Meta-training checkpoint holding theta, or a run folder for its newest checkpoint (required)")
      ->type_name("FILE|RUN");
  cmd->add_option("--task", flags->task, "Task to adapt to: a task name of the data config (required)");
  cmd->add_option("-o,--out", flags->out, "Output folder for phi and its PEFT adapter (required)")->type_name("DIR");
  return {cmd, [flags] { return run_adapt(*flags); }};
}

}  // namespace abmll::cli
