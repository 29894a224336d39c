// What `abmll evaluate` reports about its predictions, independent of how they were made: metrics per task, their
// mean over tasks, metrics pooled over every query, 95% bootstrap confidence intervals, and the predictions file.
//
// Bootstrap. Each resample draws, within every task, as many queries as the task has, with replacement (stratified
// by task, so every task keeps its weight); pooled and mean-over-task accuracy and ECE are recomputed on it. The
// interval is the 2.5th and 97.5th percentile (linear interpolation between order statistics) over the resamples.
//
// AUROC is confidence_auroc (calibration.h), null where undefined (a task with only right or only wrong answers); its
// mean over tasks is over the tasks where it is defined. AURC and E-AURC are selective_risk's
// (selective_prediction.h), per task, their mean over tasks, and pooled.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace abmll::eval {

struct QueryResult {
  std::int64_t id = 0;          // the query's index in its task's episode
  std::vector<double> probs;    // predictive probability per option
  std::vector<double> loglik;   // option log-likelihoods (mean over posterior samples)
  std::int64_t label = 0;
  std::string source;           // where the example came from ("file:line"), for analysis
  // The mean over posterior draws of each draw's entropy over the options (nats): with the entropy of `probs` it
  // splits the predictive's uncertainty into the draws' own and their disagreement (predictive_uncertainty.h). With
  // one draw (a point estimate, the posterior mean) it is the entropy of `probs`.
  double expected_entropy = 0;
};

struct TaskResult {
  std::string task;
  std::vector<QueryResult> queries;  // at least one
  nlohmann::json extra;              // method-specific fields copied into the task's entry (support NLL, ...)
};

// A task's result as JSON ({"task", "queries": [{"id", "probs", "loglik", "label", "source", "expected_entropy"}],
// "extra"}) and back,
// exactly: how finished tasks are recorded for `evaluate --resume` (JSON text writes finite doubles with enough
// digits to read back unchanged, and NaN or infinities as null, which then do not read back) and exchanged between
// ranks (as CBOR, which keeps every double). task_result_from_json throws nlohmann's exceptions, or
// InputError for an integer field out of range, on JSON of another shape.
nlohmann::json task_result_to_json(const TaskResult& result);
TaskResult task_result_from_json(const nlohmann::json& json);

struct SummaryOptions {
  int bins = 15;
  int resamples = 1000;
  std::uint64_t seed = 0;  // the run seed; the bootstrap draws from Rng::stream(seed, "bootstrap")
};

// {"per_task": [{"task", "n", "accuracy", "ece", "mce", "nll", "brier", "bins", "auroc", "aurc", "e_aurc",
//                ...extra}],
//  "aggregate": {"mean_over_tasks": {"accuracy", "ece", "mce", "nll", "brier", "auroc", "aurc", "e_aurc",
//                                    "accuracy_ci95", "ece_ci95"},
//                "pooled": {calibration metrics..., "auroc", "aurc", "e_aurc", "accuracy_ci95", "ece_ci95"},
//                "bootstrap": {"resamples", "stratified_by": "task", "seed_stream": "bootstrap"}}}
// Throws InputError when no task has a query.
nlohmann::json summarize(const std::vector<TaskResult>& tasks, const SummaryOptions& options);

// One JSON line per query: {"task", "id", "probs", "label", "option_loglik", "source", "entropy",
// "expected_entropy", "mutual_information"} (the last three as predictive_uncertainty.h defines them), readable by
// `abmll calibrate` (which reads "probs" and "label").
void write_predictions(const std::filesystem::path& path, const std::vector<TaskResult>& tasks);

}  // namespace abmll::eval
