// `abmll predict`: a task's predictions, with their uncertainty, for queries of one's own (see meta/predict.h).
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/config_loader.h"
#include "io/report.h"
#include "meta/predict.h"
#include "util/atomic_file.h"
#include "util/device.h"
#include "util/error.h"
#include "util/folder_lock.h"
#include "util/interrupt.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

struct PredictFlags {
  ConfigFlags config;
  std::string adapted, task, input, out;
  bool resume = false;
  std::size_t chunk = 1024;
};

int run_predict(const PredictFlags& flags) {
  auto config = load_config(flags.config);
  if (!config) return 0;
  if (flags.input.empty() || flags.out.empty()) throw InputError("predict needs --input and --out");
  const meta::PredictRun run{flags.adapted, flags.task,   flags.input, flags.out,
                             flags.resume,  flags.chunk, config_to_json(*config)};
  // The record of finished chunks and the outputs share the folder: one prediction in it at a time.
  const FolderLock lock(run.out, "predict");
  install_interrupt_handlers();
  Report report("predict", command_line());
  report.set_config(config_to_json(*config));
  const DeviceChoice device = resolve_device(config->run.device);
  report.set_device(device.name, device.description);
  const meta::PredictResult result = meta::predict(*config, run);
  if (result.interrupt_signal) {
    log::warn("interrupted after {} of {} chunks; `--resume` continues from them ({})", result.chunks_done,
              result.chunks, result.record.string());
    return interrupt_exit_code(result.interrupt_signal);
  }
  write_file_atomic(run.out / "config.yaml", config_to_yaml(*config));
  for (const auto& [key, value] : result.summary.items()) report.set_result(key, value);
  report.write(run.out / "report.json");
  return 0;
}

}  // namespace

Command register_predict(CLI::App& root) {
  auto flags = std::make_shared<PredictFlags>();
  CLI::App* cmd = root.add_subcommand("predict", "Predict answers, with their uncertainty, for a task's new queries");
  add_config_flags(*cmd, flags->config);
  // Checked in run_predict rather than marked required, so that --help-config works without them.
  cmd->add_option("--adapted", flags->adapted,
                  "What `abmll adapt` wrote for the task (its folder or phi.safetensors); for methods that adapt")
      ->type_name("DIR");
  cmd->add_option("--task", flags->task,
                  "Task whose options and demonstrations the queries take (default: the adapted task)")
      ->type_name("TASK");
  cmd->add_option("--input", flags->input,
                  "Queries, one a line: {\"input\": ...} [\"options\": [...]] [\"output\": ...] as JSON, or in a .tsv "
                  "input[<TAB>answer] (required)")
      ->type_name("FILE");
  cmd->add_option("-o,--out", flags->out, "Output folder: predictions.jsonl, report.json (required)")
      ->type_name("DIR");
  cmd->add_flag("--resume", flags->resume,
                "Keep the chunks an interrupted prediction with the same settings scored (predictions.chunks.jsonl)");
  cmd->add_option("--chunk", flags->chunk, "Queries scored and recorded together (default 1024)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->type_name("N");
  return {cmd, [flags] { return run_predict(*flags); }};
}

}  // namespace abmll::cli
