// `abmll evaluate`: scores answer options on the held-out tasks of a config with its method and reports accuracy
// and calibration (see meta/evaluate.h); predictions.jsonl and reliability.svg are written beside the report.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/distributed.h"
#include "config/config_loader.h"
#include "io/report.h"
#include "meta/checkpoint.h"
#include "meta/evaluate.h"
#include "util/device.h"
#include "util/error.h"
#include "util/folder_lock.h"
#include "util/interrupt.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

struct EvaluateFlags {
  ConfigFlags config;
  std::string checkpoint, out, save_adapted;
  bool resume = false;
  std::string dist_backend = "auto";
};

int run_evaluate(const EvaluateFlags& flags) {
  auto config = load_config(flags.config);
  if (!config) return 0;
  if (flags.out.empty()) throw InputError("evaluate needs --out REPORT.json");
  const dist::LaunchEnv launch = dist::read_launch_env(dist::process_environment());
  const bool writer = launch.rank == 0;  // rank 0 alone writes the report and what goes beside it
  tag_rank_logs(launch);
  // predictions.jsonl, reliability.svg and the finished-task record go beside the report: one evaluation per folder
  // at a time.
  const std::filesystem::path folder = std::filesystem::path(flags.out).parent_path();
  std::optional<FolderLock> lock;
  if (writer) lock.emplace(folder.empty() ? std::filesystem::path(".") : folder, "evaluate");
  install_interrupt_handlers();
  DeviceChoice device = resolve_device(config->run.device);
  const std::unique_ptr<dist::ProcessGroup> group = join_process_group(launch, flags.dist_backend, *config, device);
  const std::filesystem::path checkpoint = flags.checkpoint.empty() ? "" : meta::resolve_checkpoint(flags.checkpoint);
  const meta::EvaluateRun run{checkpoint, flags.out, flags.resume, config_to_json(*config), group.get(),
                              flags.save_adapted};
  Report report("evaluate", command_line());
  report.set_config(config_to_json(*config));
  report.set_device(device.name, device.description);
  const meta::EvaluateResult result = meta::evaluate(*config, run);
  if (result.interrupt_signal) {
    log::warn("interrupted after {} of {} tasks; `--resume` continues from them{}", result.tasks_done,
              result.tasks_total, writer ? fmt::format(" ({})", result.progress.string()) : "");
    return interrupt_exit_code(result.interrupt_signal);
  }
  if (!writer) return 0;
  for (const auto& [key, value] : result.results.items()) report.set_result(key, value);
  report.add_timing("evaluate_seconds", result.seconds);
  report.add_timing("scoring_seconds", result.scoring_seconds);
  if (launch.distributed()) report.set_result("ranks", launch.world_size);
  // Scoring throughput (every option of a query, under every posterior sample) of one process, for comparing
  // scoring settings.
  if (result.scoring_seconds > 0)
    report.set_result("scoring_queries_per_s", static_cast<double>(result.queries) / result.scoring_seconds);
  report.write(run.report);
  std::error_code ec;
  std::filesystem::remove(result.progress, ec);  // the report holds every task now
  log::info("wrote {}, {} and {}", run.report.string(), result.predictions.string(), result.plot.string());
  return 0;
}

}  // namespace

Command register_evaluate(CLI::App& root) {
  auto flags = std::make_shared<EvaluateFlags>();
  CLI::App* cmd = root.add_subcommand("evaluate", "Score held-out tasks: accuracy, ECE, NLL, Brier, AUROC");
  add_config_flags(*cmd, flags->config);
  // Checked in run_evaluate rather than marked required, so that --help-config works without them.
  cmd->add_option("--checkpoint", flags->checkpoint,
                  "Meta-training checkpoint, or a run folder for its newest checkpoint (required by abmll, abmll_icl)")
      ->type_name("FILE|RUN");
  cmd->add_option("-o,--out", flags->out, "Report file (JSON, required); predictions.jsonl and reliability.svg are "
                                          "written beside it")
      ->type_name("REPORT.json");
  cmd->add_flag("--resume", flags->resume,
                "Keep the tasks an interrupted evaluation with the same settings finished (REPORT.tasks.jsonl)");
  cmd->add_option("--save-adapted", flags->save_adapted,
                  "Also keep each task's adapted posterior or LoRA in DIR/<task>/, as `abmll adapt` writes it")
      ->type_name("DIR");
  add_dist_backend_flag(*cmd, flags->dist_backend);
  return {cmd, [flags] { return run_evaluate(*flags); }};
}

}  // namespace abmll::cli
