// Metrics, bootstrap intervals and the predictions file of an evaluation (see evaluation_summary.h).
#include "eval/evaluation_summary.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "eval/calibration.h"
#include "eval/predictive_uncertainty.h"
#include "eval/quantile.h"
#include "eval/selective_prediction.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/json_fields.h"
#include "util/rng.h"

namespace abmll::eval {
namespace {

std::vector<CategoricalPrediction> categorical(const std::vector<QueryResult>& queries) {
  std::vector<CategoricalPrediction> out;
  out.reserve(queries.size());
  for (const auto& q : queries) out.push_back({q.probs, q.label});
  return out;
}

// The scalar metrics of `m` (no bins).
nlohmann::json scalars(const CalibrationMetrics& m) {
  return {{"n", m.n}, {"accuracy", m.accuracy}, {"ece", m.ece}, {"mce", m.mce}, {"nll", m.nll}, {"brier", m.brier}};
}

nlohmann::json interval(std::vector<double> values) {
  const double lo = quantile(values, 0.025), hi = quantile(std::move(values), 0.975);
  return nlohmann::json::array({lo, hi});
}

}  // namespace

nlohmann::json summarize(const std::vector<TaskResult>& tasks, const SummaryOptions& options) {
  std::vector<std::vector<CategoricalPrediction>> per_task;
  std::vector<CategoricalPrediction> pooled;
  for (const auto& t : tasks) {
    if (t.queries.empty()) throw InputError("evaluation: task " + t.task + " has no scored queries");
    per_task.push_back(categorical(t.queries));
    pooled.insert(pooled.end(), per_task.back().begin(), per_task.back().end());
  }
  if (pooled.empty()) throw InputError("evaluation: no task was scored");

  // Point estimates: each task, the mean over tasks, and every query pooled.
  nlohmann::json task_list = nlohmann::json::array();
  const char* keys[] = {"accuracy", "ece", "mce", "nll", "brier"};
  nlohmann::json mean = nlohmann::json::object();
  for (const char* key : keys) mean[key] = 0.0;
  double auroc_sum = 0, aurc_sum = 0, e_aurc_sum = 0;
  int auroc_tasks = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const CalibrationMetrics m = calibration_metrics(per_task[i], options.bins);
    nlohmann::json entry = {{"task", tasks[i].task}};
    entry.update(to_json(m));
    const double auroc = confidence_auroc(per_task[i]);
    entry["auroc"] = metric_json(auroc);
    const SelectiveRisk risk = selective_risk(per_task[i]);
    entry["aurc"] = risk.aurc;
    entry["e_aurc"] = risk.e_aurc;
    aurc_sum += risk.aurc;
    e_aurc_sum += risk.e_aurc;
    if (std::isfinite(auroc)) auroc_sum += auroc, ++auroc_tasks;
    if (tasks[i].extra.is_object()) entry.update(tasks[i].extra);
    task_list.push_back(std::move(entry));
    const nlohmann::json s = scalars(m);
    for (const char* key : keys)
      mean[key] = mean[key].get<double>() + s[key].get<double>() / static_cast<double>(tasks.size());
  }
  mean["auroc"] = metric_json(auroc_tasks ? auroc_sum / auroc_tasks : std::nan(""));
  mean["aurc"] = aurc_sum / static_cast<double>(tasks.size());
  mean["e_aurc"] = e_aurc_sum / static_cast<double>(tasks.size());
  nlohmann::json pooled_json = to_json(calibration_metrics(pooled, options.bins));
  pooled_json["auroc"] = metric_json(confidence_auroc(pooled));
  const SelectiveRisk pooled_risk = selective_risk(pooled);
  pooled_json["aurc"] = pooled_risk.aurc;
  pooled_json["e_aurc"] = pooled_risk.e_aurc;

  // Stratified bootstrap over queries.
  Rng rng = Rng::stream(options.seed, "bootstrap");
  std::vector<double> pooled_acc, pooled_ece, mean_acc, mean_ece;
  std::vector<CategoricalPrediction> sample_pooled, sample_task;
  for (int r = 0; r < options.resamples; ++r) {
    sample_pooled.clear();
    double acc = 0, ece = 0;
    for (const auto& preds : per_task) {
      sample_task.clear();
      for (std::size_t j = 0; j < preds.size(); ++j) sample_task.push_back(preds[rng.below(preds.size())]);
      const CalibrationMetrics m = calibration_metrics(sample_task, options.bins);
      acc += m.accuracy / static_cast<double>(per_task.size());
      ece += m.ece / static_cast<double>(per_task.size());
      sample_pooled.insert(sample_pooled.end(), sample_task.begin(), sample_task.end());
    }
    const CalibrationMetrics m = calibration_metrics(sample_pooled, options.bins);
    pooled_acc.push_back(m.accuracy);
    pooled_ece.push_back(m.ece);
    mean_acc.push_back(acc);
    mean_ece.push_back(ece);
  }
  if (options.resamples > 0) {
    pooled_json["accuracy_ci95"] = interval(pooled_acc);
    pooled_json["ece_ci95"] = interval(pooled_ece);
    mean["accuracy_ci95"] = interval(mean_acc);
    mean["ece_ci95"] = interval(mean_ece);
  }
  return {{"per_task", std::move(task_list)},
          {"aggregate",
           {{"mean_over_tasks", std::move(mean)},
            {"pooled", std::move(pooled_json)},
            {"bootstrap",
             {{"resamples", options.resamples}, {"stratified_by", "task"}, {"seed_stream", "bootstrap"}}}}}};
}

nlohmann::json task_result_to_json(const TaskResult& r) {
  nlohmann::json queries = nlohmann::json::array();
  for (const auto& q : r.queries)
    queries.push_back({{"id", q.id},
                       {"probs", q.probs},
                       {"loglik", q.loglik},
                       {"label", q.label},
                       {"source", q.source},
                       {"expected_entropy", q.expected_entropy}});
  return {{"task", r.task}, {"queries", std::move(queries)}, {"extra", r.extra}};
}

TaskResult task_result_from_json(const nlohmann::json& j) {
  TaskResult r;
  r.task = j.at("task").get<std::string>();
  for (const auto& q : j.at("queries")) {
    r.queries.push_back({integer_field(q, "id"), q.at("probs").get<std::vector<double>>(),
                         q.at("loglik").get<std::vector<double>>(), integer_field(q, "label"),
                         q.at("source").get<std::string>(), q.at("expected_entropy").get<double>()});
  }
  r.extra = j.at("extra");
  return r;
}

void write_predictions(const std::filesystem::path& path, const std::vector<TaskResult>& tasks) {
  std::string text;
  for (const auto& t : tasks)
    for (const auto& q : t.queries) {
      const double entropy = predictive_entropy(q.probs);
      const nlohmann::json line = {{"task", t.task},
                                   {"id", q.id},
                                   {"probs", q.probs},
                                   {"label", q.label},
                                   {"option_loglik", q.loglik},
                                   {"source", q.source},
                                   {"entropy", entropy},
                                   {"expected_entropy", q.expected_entropy},
                                   {"mutual_information", std::max(0.0, entropy - q.expected_entropy)}};
      text += line.dump() + "\n";
    }
  write_file_atomic(path, text);
}

}  // namespace abmll::eval
