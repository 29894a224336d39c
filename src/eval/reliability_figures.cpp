#include "eval/reliability_figures.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "eval/reliability_svg.h"
#include "util/error.h"

namespace abmll::eval {
namespace {

std::string file_safe(const std::string& text) {
  std::string out = text;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  return out;
}

}  // namespace

std::vector<ReliabilityFigure> reliability_figures(const std::vector<RunResult>& runs) {
  std::vector<ReliabilityFigure> figures;
  for (const TableRow& row : results_table(runs)) {
    std::vector<std::vector<CalibrationBin>> sets;
    std::vector<long long> seeds;
    const RunResult* first = nullptr;
    for (const RunResult& run : runs) {
      if (!in_row(run, row) || run.bins.empty()) continue;
      if (first && run.bins.size() != first->bins.size())
        throw InputError(fmt::format("{} and {}: {} confidence bins against {} (another eval.bins); a reliability "
                                     "figure pools the bins of runs binned alike",
                                     first->source.string(), run.source.string(), first->bins.size() - 1,
                                     run.bins.size() - 1));
      if (!first) first = &run;
      sets.push_back(run.bins);
      seeds.push_back(run.seed);
    }
    if (sets.empty()) continue;
    if (figures.empty() || figures.back().benchmark != row.benchmark || figures.back().model != row.model)
      figures.push_back({row.benchmark, row.model, {}});
    std::sort(seeds.begin(), seeds.end());
    figures.back().curves.push_back({method_label(row), seeds, pool_bins(sets)});
  }
  return figures;
}

nlohmann::json to_json(const ReliabilityFigure& figure) {
  nlohmann::json curves = nlohmann::json::array();
  for (const MethodCurve& curve : figure.curves) {
    nlohmann::json c = to_json(curve.pooled);
    c.erase("nll");
    c.erase("brier");
    c["method"] = curve.method;
    c["seeds"] = curve.seeds;
    curves.push_back(std::move(c));
  }
  return {{"benchmark", figure.benchmark}, {"model", figure.model}, {"curves", curves}};
}

std::string figure_svg(const ReliabilityFigure& figure) {
  std::vector<ReliabilityCurve> curves;
  for (const MethodCurve& curve : figure.curves) {
    const std::size_t n = curve.seeds.size();
    curves.push_back({fmt::format("{} ({} seed{})", curve.method, n, n == 1 ? "" : "s"), curve.pooled});
  }
  return reliability_comparison_svg(curves, fmt::format("{}, {}: reliability by method", figure.benchmark,
                                                        figure.model));
}

std::string figure_file_stem(const ReliabilityFigure& figure) {
  return file_safe(fmt::format("reliability-{}-{}", figure.benchmark, figure.model));
}

}  // namespace abmll::eval
