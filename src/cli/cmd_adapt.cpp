// `abmll adapt`: infers a task's adapter posterior phi from its support set, starting from a meta-trained prior
// theta (see meta/adapt.h), and writes phi and its posterior-mean PEFT adapter; several tasks in one run.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/config_loader.h"
#include "io/report.h"
#include "meta/adapt.h"
#include "meta/checkpoint.h"
#include "util/atomic_file.h"
#include "util/device.h"
#include "util/error.h"
#include "util/interrupt.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

struct AdaptFlags {
  ConfigFlags config;
  std::string checkpoint, out;
  std::vector<std::string> tasks;
  bool held_out = false;
};

int run_adapt(const AdaptFlags& flags) {
  auto config = load_config(flags.config);
  if (!config) return 0;
  if (flags.checkpoint.empty() || (flags.tasks.empty() && !flags.held_out) || flags.out.empty())
    throw InputError("adapt needs --checkpoint, --task (or --held-out) and --out");
  install_interrupt_handlers();
  const meta::AdaptRun run{meta::resolve_checkpoint(flags.checkpoint), flags.tasks, flags.held_out, flags.out};
  const DeviceChoice device = resolve_device(config->run.device);
  // Each task's folder gets the resolved config and a report of its own, as when adapted alone.
  auto write_report = [&](const meta::AdaptResult& result) {
    Report report("adapt", command_line());
    report.set_config(config_to_json(*config));
    report.set_device(device.name, device.description);
    write_file_atomic(result.folder / "config.yaml", config_to_yaml(*config));
    report.set_result("task", result.task);
    report.set_result("held_out", result.held_out);
    report.set_result("support_size", result.support_size);
    report.set_result("support_nll", result.support_nll);
    report.set_result("phi", result.phi_file.string());
    report.set_result("adapter", result.adapter_dir.string());
    report.write(result.folder / "report.json");
    log::info("wrote {} and {}", result.phi_file.string(), result.adapter_dir.string());
  };
  const std::vector<meta::AdaptResult> done = meta::adapt_tasks(*config, run, write_report);
  if (interrupted()) {
    log::warn("interrupted after {} task(s); their folders are complete", done.size());
    return interrupt_exit_code(interrupt_signal());
  }
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
  cmd->add_option("--task", flags->tasks,
                  "Task to adapt to, a task name of the data config; repeat it for several, adapted under one loaded "
                  "model")
      ->type_name("TASK");
  cmd->add_flag("--held-out", flags->held_out, "Also adapt every held-out task of the data config");
  cmd->add_option("-o,--out", flags->out,
                  "Output folder for phi and its PEFT adapter (required); with several tasks, DIR/<task>/ for each")
      ->type_name("DIR");
  return {cmd, [flags] { return run_adapt(*flags); }};
}

}  // namespace abmll::cli
