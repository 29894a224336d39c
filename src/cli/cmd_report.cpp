// `abmll report`: the comparison table of evaluation runs (see eval/results_table.h) as Markdown, with a CSV copy
// beside it, and optionally paired differences from a baseline method (eval/paired_comparison.h) and reliability
// diagrams comparing the methods (eval/reliability_figures.h).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "config/config_schema.h"
#include "eval/paired_comparison.h"
#include "eval/reliability_figures.h"
#include "eval/results_table.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/text_distance.h"
#include "util/log.h"

namespace abmll::cli {
namespace {

struct ReportFlags {
  std::vector<std::string> runs, by;
  std::string out, csv, plots, baseline;
  int resamples = 1000;
};

// One SVG and one JSON file per figure in `folder`.
void write_figures(const std::vector<eval::ReliabilityFigure>& figures, const std::filesystem::path& folder) {
  std::filesystem::create_directories(folder);
  for (const auto& figure : figures) {
    const std::string stem = eval::figure_file_stem(figure);
    write_file_atomic(folder / (stem + ".svg"), eval::figure_svg(figure));
    write_file_atomic(folder / (stem + ".json"), eval::to_json(figure).dump(2) + "\n");
  }
}

int run_report(const ReportFlags& flags) {
  if (flags.out.empty()) throw InputError("report needs --out TABLE.md");
  std::vector<std::string> known;
  for (const ConfigKey& k : config_keys()) known.push_back(k.path);
  for (const std::string& key : flags.by) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      const std::string hint = closest_match(key, known);
      throw InputError(fmt::format("--by {}: not a config key{}", key,
                                   hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
  }
  std::vector<std::filesystem::path> paths(flags.runs.begin(), flags.runs.end());
  const std::vector<eval::RunResult> runs = eval::collect_run_results(paths, flags.by);
  if (runs.empty()) throw InputError("report: no evaluation report (report.json of `abmll evaluate`) found");
  const auto rows = eval::results_table(runs);
  // Figures first: runs that cannot be pooled are refused before anything is written.
  const std::vector<eval::ReliabilityFigure> figures =
      flags.plots.empty() ? std::vector<eval::ReliabilityFigure>() : eval::reliability_figures(runs);
  // Paired differences from the baseline, read from the runs' predictions files before anything is written.
  std::vector<eval::PairedRow> paired;
  if (!flags.baseline.empty()) {
    if (flags.resamples < 0) throw InputError(fmt::format("--resamples must be 0 or more, not {}", flags.resamples));
    paired = eval::paired_table(runs, flags.baseline, flags.resamples);
  }
  std::string markdown = eval::table_markdown(rows);
  if (!flags.baseline.empty()) markdown += eval::paired_markdown(paired, flags.baseline, flags.resamples);
  const std::filesystem::path out = flags.out;
  const std::filesystem::path csv = flags.csv.empty() ? std::filesystem::path(out).replace_extension(".csv")
                                                      : std::filesystem::path(flags.csv);
  write_file_atomic(out, markdown);
  write_file_atomic(csv, eval::table_csv(rows));
  if (!flags.baseline.empty()) {
    const std::filesystem::path json = std::filesystem::path(out).replace_extension(".paired.json");
    write_file_atomic(json, eval::paired_json(paired, flags.baseline, flags.resamples).dump(2) + "\n");
    log::info("paired differences from {} in {} rows: wrote {}", flags.baseline, paired.size(), json.string());
  }
  std::cout << markdown;
  log::info("{} runs in {} rows: wrote {} and {}", runs.size(), rows.size(), out.string(), csv.string());
  if (!flags.plots.empty() && figures.empty())
    log::warn("report: no run reports confidence bins, so there is no reliability figure to draw");
  if (!figures.empty()) {
    write_figures(figures, flags.plots);
    log::info("wrote {} reliability figure{} (SVG and JSON) into {}", figures.size(), figures.size() == 1 ? "" : "s",
              flags.plots);
  }
  return 0;
}

}  // namespace

Command register_report(CLI::App& root) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* cmd = root.add_subcommand(
      "report",
      "Table of evaluation runs: accuracy, ECE, NLL, Brier, AUROC per benchmark and method, mean ± std over seeds");
  cmd->add_option("runs", flags->runs, "Evaluation reports, or folders searched for them (report.json)")
      ->required()
      ->type_name("RUN");
  cmd->add_option("-o,--out", flags->out, "Markdown table (required); also printed")->type_name("TABLE.md");
  cmd->add_option("--csv", flags->csv, "CSV copy (default: --out with .csv)")->type_name("TABLE.csv");
  cmd->add_option("--plots", flags->plots,
                  "Folder for reliability diagrams comparing the methods, one per benchmark and model (SVG + JSON)")
      ->type_name("DIR");
  cmd->add_option("--by", flags->by,
                  "Also split the rows by this config key's values (repeatable), e.g. outer.beta for an ablation")
      ->type_name("KEY");
  cmd->add_option("--baseline", flags->baseline,
                  "Also each method's differences from this one on the same queries, with paired bootstrap "
                  "intervals (a section of the table and TABLE.paired.json)")
      ->type_name("METHOD");
  cmd->add_option("--resamples", flags->resamples, "Bootstrap resamples of --baseline's intervals (default 1000)")
      ->type_name("N");
  return {cmd, [flags] { return run_report(*flags); }};
}

}  // namespace abmll::cli
