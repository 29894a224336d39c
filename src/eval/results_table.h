// The comparison table of `abmll report`: evaluation reports (REPORT.json of `abmll evaluate`) grouped by
// benchmark, model and method, and by the values of chosen config keys (`--by`, for ablations: outer.beta,
// data.shots, ...), with the mean and standard deviation over seeds of each run's mean-over-tasks accuracy, ECE,
// NLL, Brier score, AUROC and AURC, and the paper's reported ABMLL accuracy beside ours where it has one. Rendered as
// Markdown (for READMEs and papers) and CSV (for scripts).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eval/calibration.h"

namespace abmll::eval {

// One evaluation run's figures.
struct RunResult {
  std::filesystem::path source;  // the report file
  // run.benchmark, else the data partition's file stem, else the data folder's name; " (dev split)" appended for an
  // evaluation of the dev files (eval.split dev), so that they form rows of their own
  std::string benchmark;
  std::string split = "test";    // eval.split of the evaluation (reports without one: test)
  std::string model;             // the model folder's name
  // The method; `lora` adapted from PEFT's initialisation is "lora (from scratch)", and a point-LoRA method scored
  // with eval.mc_dropout "<method> (MC dropout)" (both: "lora (from scratch, MC dropout)").
  std::string method;
  long long seed = 0;
  double accuracy = 0, ece = 0, nll = 0, brier = 0;  // mean over the run's held-out tasks
  std::optional<double> auroc;  // mean over the tasks where defined; none in older reports or where undefined
  std::optional<double> aurc;   // selective risk's area, mean over the tasks; none in older reports
  std::vector<CalibrationBin> bins;  // the confidence bins pooled over its held-out tasks (empty when not reported)
  // (key, value) for each config key the table is split by, in their order: a string value as itself, any other as
  // JSON ("1e-07", "[\"q_proj\",\"v_proj\"]"), "" where the run's config has no such key.
  std::vector<std::pair<std::string, std::string>> variant;
};

// Reads an evaluation report, with the values of the config keys `by` (dotted paths, e.g. "outer.beta"). Throws
// InputError naming the file when it is not one (another command's report, a missing field, malformed JSON, bins
// that are not calibration bins).
RunResult read_run_result(const std::filesystem::path& report, const std::vector<std::string>& by = {});

// Every evaluation report under `paths`: files are read as reports; folders are searched recursively for
// report.json files of `abmll evaluate` (other commands' reports there are skipped). Sorted by path. Throws
// InputError for a path that does not exist, an explicit file that is not an evaluation report, or the same
// (benchmark, model, method, values of `by`, seed) reported twice.
std::vector<RunResult> collect_run_results(const std::vector<std::filesystem::path>& paths,
                                           const std::vector<std::string>& by = {});

struct TableRow {
  std::string benchmark, model, method;
  std::vector<std::pair<std::string, std::string>> variant;  // its runs' values of the keys split by
  std::vector<long long> seeds;
  struct Stat {
    double mean = 0, std = 0;  // std: sample standard deviation over seeds (0 for one seed)
  };
  Stat accuracy, ece, nll, brier;
  std::optional<Stat> auroc;  // over the auroc_seeds seeds whose runs report it
  std::size_t auroc_seeds = 0;
  std::optional<Stat> aurc;   // over the aurc_seeds seeds whose runs report it
  std::size_t aurc_seeds = 0;
  std::optional<std::string> paper_accuracy;  // the paper's ABMLL accuracy (%): abmll rows, or abmll_icl for
                                              // the benchmarks it reports with ICL only
};

// One row per (benchmark, model, method, variant), benchmarks and models in name order, methods in the order
// pretrained, icl, lora (from scratch), lora, reptile, fomaml, abmll, abmll_icl (each MC dropout row after its
// method's), and a method's variants in the order of their values (numbers as numbers).
std::vector<TableRow> results_table(const std::vector<RunResult>& runs);

// Whether `run` is one of `row`'s runs: the same benchmark, model, method and variant.
bool in_row(const RunResult& run, const TableRow& row);

// The row's method with its variant, for figures: "abmll", or "abmll (outer.beta=1e-07)".
std::string method_label(const TableRow& row);

// The table, with a column after the method for each key split by (the rows' variant keys).
std::string table_markdown(const std::vector<TableRow>& rows);
std::string table_csv(const std::vector<TableRow>& rows);

// The paper's reported ABMLL accuracy (%) for a benchmark label (ABMLL.md section 8), matched on the label's
// lower-cased words: "cls-45", "crossfit-nli", "unifiedqa-mcqa", "legalbench", ... Nothing for other labels.
std::optional<std::string> paper_abmll_accuracy(const std::string& benchmark);

}  // namespace abmll::eval
