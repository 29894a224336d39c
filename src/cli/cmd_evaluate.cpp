// `abmll evaluate`: scores answer options on held-out tasks and reports accuracy and calibration. Flags are final;
// scoring and metrics arrive with the evaluation layer.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/error.h"

namespace abmll::cli {
namespace {

struct EvaluateFlags {
  ConfigFlags config;
  std::string checkpoint, out;
};

}  // namespace

Command register_evaluate(CLI::App& root) {
  auto flags = std::make_shared<EvaluateFlags>();
  CLI::App* cmd = root.add_subcommand("evaluate", "Score held-out tasks: accuracy, ECE, NLL, Brier");
  add_config_flags(*cmd, flags->config);
  cmd->add_option("--checkpoint", flags->checkpoint, "Checkpoint of a meta-trained method")->type_name("FILE");
  cmd->add_option("-o,--out", flags->out, "Report file (JSON); predictions.jsonl is written beside it")
      ->type_name("REPORT.json");
  return {cmd, [flags] {
            if (!load_config(flags->config)) return 0;
            throw Error("`abmll evaluate` is not implemented in this build yet (the config is valid)");
            return 1;
          }};
}

}  // namespace abmll::cli
