// Paired comparison of a method with a baseline evaluated on the same queries (the same data, tasks and seeds):
// the differences method - baseline of the table's figures, with 95% intervals from a paired bootstrap.
//
// Figures. As the comparison table has them (results_table.h): each run's accuracy, ECE, NLL, Brier score, the
// confidence's AUROC and the selective risk's AURC averaged over its tasks, then over the seeds; the difference of
// those means is the mean over seeds and tasks of the per-task differences, since both runs have the same tasks.
// AUROC is undefined for a task whose queries are all right or all wrong: its difference is averaged over the tasks
// where both runs have one (so it can differ from the difference of the table's AUROCs, which average over the tasks
// where each run has one), in the point estimate and in each resample alike; NaN (null) where no task has one.
//
// Pairing. A query is known by its task, its index in the task's episode and its example's file:line, as `abmll
// evaluate` writes them in predictions.jsonl. Both runs of a seed must hold the same queries with the same labels
// and option counts; anything else means they did not score the same data and is refused, naming both files.
//
// Bootstrap. Each resample draws, within every (seed, task), as many queries as it has, with replacement, the same
// draws for both methods (so what the queries share cancels); the differences are recomputed on it, and the interval
// is the 2.5th and 97.5th percentile over the resamples (as evaluate's intervals). An interval that excludes 0 says
// the difference is unlikely to come from which queries were drawn; it says nothing of other seeds' episodes beyond
// those compared.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "eval/predictions_file.h"
#include "eval/results_table.h"

namespace abmll::eval {

// One seed's predictions of the method and of the baseline.
struct PairedSeed {
  long long seed = 0;
  std::filesystem::path method_file, baseline_file;  // for messages
  std::vector<PredictionRecord> method, baseline;
};

struct Difference {
  double value = 0;       // method - baseline
  double lo = 0, hi = 0;  // 95% bootstrap interval
};

struct PairedDifference {
  std::size_t seeds = 0, tasks = 0, queries = 0;  // tasks: (seed, task) pairs
  Difference accuracy, ece, nll, brier, auroc, aurc;
};

struct PairedOptions {
  int bins = 15;          // the evaluations' confidence bins (ECE)
  int resamples = 1000;   // 0: no intervals (lo = hi = value)
  std::uint64_t seed = 0; // the bootstrap draws from Rng::stream(seed, "paired bootstrap")
};

// The differences over `seeds` (at least one). Throws InputError naming the files when a seed's queries do not pair
// (a line without "task", a query in one file only or twice in one, different labels or option counts).
PairedDifference paired_difference(const std::vector<PairedSeed>& seeds, const PairedOptions& options);

// `abmll report --baseline`: one row per row of the comparison table other than the baseline's, over the seeds
// that both the method and the baseline have (rows without any are left out). A run is compared with the baseline's
// run of the same benchmark, model and seed; where the baseline has several (the table is split by config keys its
// runs differ in), with the one of the same variant.
struct PairedRow {
  std::string benchmark, model, method;
  std::vector<std::pair<std::string, std::string>> variant;  // the table row's (results_table.h)
  std::vector<long long> seeds;
  PairedDifference difference;
};

// Reads each run's predictions.jsonl (beside its report) for the rows. Throws InputError when no run has method
// `baseline`, when the baseline's run to compare with is ambiguous, when paired runs were binned differently, or as
// paired_difference.
std::vector<PairedRow> paired_table(const std::vector<RunResult>& runs, const std::string& baseline,
                                    int resamples);

// A Markdown section (heading, what the figures are, the table with a column per key split by; intervals that
// exclude 0 in bold) and the same rows as JSON: {"baseline", "resamples", "rows": [{"benchmark", "model", "method",
// "variant": {key: value}, "seeds", "tasks", "queries", "accuracy": {"difference", "ci95"}, "ece": ..., "nll": ...,
// "brier", "auroc", "aurc": ...}]}.
std::string paired_markdown(const std::vector<PairedRow>& rows, const std::string& baseline, int resamples);
nlohmann::json paired_json(const std::vector<PairedRow>& rows, const std::string& baseline, int resamples);

}  // namespace abmll::eval
