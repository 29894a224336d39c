// Reliability diagrams that compare methods (`abmll report --plots DIR`): for each benchmark and model of the
// results table (results_table.h), one figure with a curve per method, accuracy against mean confidence in each
// confidence bin. A curve pools the bins of the method's runs (seeds), each run's bins being its evaluation's pooled
// bins over the held-out tasks: counts add up and accuracies and confidences average weighted by count
// (pool_bins), so a curve is the reliability diagram of all the method's queries together, and the ECE beside it
// that of the pooled queries (the table's ECE is a mean over tasks, then over seeds).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "eval/calibration.h"
#include "eval/results_table.h"

namespace abmll::eval {

struct MethodCurve {
  std::string method;            // with the row's variant where the table is split by config keys (method_label)
  std::vector<long long> seeds;  // of its runs, ascending
  CalibrationMetrics pooled;  // n, accuracy, ECE, MCE and bins of the pooled queries (no NLL or Brier: NaN)
};

struct ReliabilityFigure {
  std::string benchmark, model;
  std::vector<MethodCurve> curves;  // in the table's method order
};

// The figures of `runs`, in the table's order. Runs whose reports carry no bins are left out (a figure without
// curves is not made). Throws InputError naming two reports of one figure whose bins differ (another eval.bins).
std::vector<ReliabilityFigure> reliability_figures(const std::vector<RunResult>& runs);

// {"benchmark", "model", "curves": [{"method", "seeds", "n", "accuracy", "ece", "mce", "bins": [...]}]}
nlohmann::json to_json(const ReliabilityFigure& figure);

// The figure as SVG (reliability_comparison_svg).
std::string figure_svg(const ReliabilityFigure& figure);

// "reliability-<benchmark>-<model>", with characters other than ASCII letters, digits, '-', '_' and '.' as '_':
// the figure's file name without extension.
std::string figure_file_stem(const ReliabilityFigure& figure);

}  // namespace abmll::eval
