// `abmll calibrate`: accuracy, calibration metrics and the confidence's AUROC for telling right answers from wrong
// ones, of a predictions file, optionally after temperature scaling fitted on a validation file, and a reliability
// diagram.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/calibration.h"
#include "eval/predictions_file.h"
#include "eval/reliability_svg.h"
#include "eval/selective_prediction.h"
#include "eval/temperature.h"
#include "io/report.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

struct CalibrateFlags {
  std::string predictions, validation, plot, out;
  int bins = 15;
};

// Logits of each record: as given, or log(probs) (equal to the logits up to a constant per query, so the softmax
// at any temperature is the same; zero probabilities become -inf and stay zero).
std::vector<std::vector<double>> logits_of(const std::vector<eval::PredictionRecord>& records) {
  std::vector<std::vector<double>> out;
  out.reserve(records.size());
  for (const auto& r : records) {
    if (r.logits) {
      out.push_back(*r.logits);
    } else {
      std::vector<double> z(r.probs.size());
      for (std::size_t k = 0; k < z.size(); ++k) z[k] = std::log(r.probs[k]);
      out.push_back(std::move(z));
    }
  }
  return out;
}

int run_calibrate(const CalibrateFlags& flags) {
  Report report("calibrate", command_line());
  report.put_results_at_top_level();
  const auto records = eval::read_predictions(flags.predictions);
  const eval::CalibrationMetrics before = eval::calibration_metrics(eval::as_categorical(records), flags.bins);
  log::info("{}: n={} accuracy={:.4f} ECE={:.4f} MCE={:.4f} NLL={:.4f} Brier={:.4f}", flags.predictions, before.n,
            before.accuracy, before.ece, before.mce, before.nll, before.brier);
  nlohmann::json results = eval::to_json(before);
  results["auroc"] = eval::metric_json(eval::confidence_auroc(eval::as_categorical(records)));
  const eval::SelectiveRisk risk = eval::selective_risk(eval::as_categorical(records));
  results["aurc"] = risk.aurc;
  results["e_aurc"] = risk.e_aurc;
  results["predictions"] = flags.predictions;

  if (!flags.validation.empty()) {
    const auto validation = eval::read_predictions(flags.validation);
    std::vector<std::int64_t> labels;
    for (const auto& r : validation) {
      if (r.probs[r.label] <= 0)
        throw InputError(fmt::format("{}:{}: the label has probability 0, so no temperature can fit it",
                                     flags.validation, r.line));
      labels.push_back(r.label);
    }
    const eval::TemperatureFit fit = eval::fit_temperature(logits_of(validation), labels);
    if (fit.at_bound) log::warn("the fitted temperature hit its bound: {}", fit.temperature);
    std::vector<eval::CategoricalPrediction> scaled;
    const auto logits = logits_of(records);
    for (std::size_t i = 0; i < records.size(); ++i)
      scaled.push_back({eval::softmax(logits[i], fit.temperature), records[i].label});
    const eval::CalibrationMetrics after = eval::calibration_metrics(scaled, flags.bins);
    log::info("temperature {:.4f} (validation NLL {:.4f} -> {:.4f}); after scaling: ECE={:.4f} NLL={:.4f}",
              fit.temperature, fit.nll_before, fit.nll_after, after.ece, after.nll);
    results["temperature"] = fit.temperature;
    results["validation"] = {{"file", flags.validation},
                             {"n", validation.size()},
                             {"nll_before", fit.nll_before},
                             {"nll_after", fit.nll_after},
                             {"temperature_at_bound", fit.at_bound}};
    results["after"] = eval::to_json(after);
    results["after"]["auroc"] = eval::metric_json(eval::confidence_auroc(scaled));
    const eval::SelectiveRisk risk_after = eval::selective_risk(scaled);
    results["after"]["aurc"] = risk_after.aurc;
    results["after"]["e_aurc"] = risk_after.e_aurc;
  }
  for (auto& [key, value] : results.items()) report.set_result(key, value);

  if (!flags.plot.empty()) {
    write_file_atomic(flags.plot, eval::reliability_svg(before, std::filesystem::path(flags.predictions).filename()));
    log::info("wrote {}", flags.plot);
  }
  report.write(flags.out);
  log::info("wrote {}", flags.out);
  return 0;
}

}  // namespace

Command register_calibrate(CLI::App& root) {
  auto flags = std::make_shared<CalibrateFlags>();
  CLI::App* cmd = root.add_subcommand("calibrate", "Calibration metrics, reliability diagram, temperature scaling");
  cmd->add_option("--predictions", flags->predictions, "Lines {\"probs\": [...], \"label\": k} or with logits")
      ->type_name("P.jsonl")
      ->required();
  cmd->add_option("--bins", flags->bins, "Equal-width confidence bins (default 15)")->check(CLI::Range(1, 100000));
  cmd->add_option("--fit-temperature", flags->validation, "Fit a temperature on this file and report metrics after")
      ->type_name("VAL.jsonl");
  cmd->add_option("--plot", flags->plot, "Reliability diagram (SVG)")->type_name("FILE.svg");
  cmd->add_option("-o,--out", flags->out, "Metrics (JSON)")->type_name("C.json")->required();
  return {cmd, [flags] { return run_calibrate(*flags); }};
}

}  // namespace abmll::cli
