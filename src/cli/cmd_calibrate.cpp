// `abmll calibrate`: calibration metrics, reliability diagram and temperature scaling from a predictions file.
// Flags are final; the metrics arrive with the evaluation layer.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "util/error.h"

namespace abmll::cli {
namespace {

struct CalibrateFlags {
  std::string predictions, validation, plot, out;
  std::int64_t bins = 15;
};

}  // namespace

Command register_calibrate(CLI::App& root) {
  auto flags = std::make_shared<CalibrateFlags>();
  CLI::App* cmd = root.add_subcommand("calibrate", "Calibration metrics, reliability diagram, temperature scaling");
  cmd->add_option("--predictions", flags->predictions, "Lines {\"probs\": [...], \"label\": k} or with logits")
      ->type_name("P.jsonl")
      ->required();
  cmd->add_option("--bins", flags->bins, "Equal-width confidence bins")->check(CLI::PositiveNumber);
  cmd->add_option("--fit-temperature", flags->validation, "Fit a temperature on this file's logits")
      ->type_name("VAL.jsonl");
  cmd->add_option("--plot", flags->plot, "Reliability diagram (SVG)")->type_name("FILE.svg");
  cmd->add_option("-o,--out", flags->out, "Metrics (JSON)")->type_name("C.json")->required();
  return {cmd, [] {
            throw Error("`abmll calibrate` is not implemented in this build yet");
            return 1;
          }};
}

}  // namespace abmll::cli
