// The evaluation summary: per-task, mean-over-task and pooled metrics agree with calibration_metrics, the bootstrap
// intervals are reproducible and bracket the point estimates, quantiles follow numpy, and the predictions file is
// what `abmll calibrate` reads.
#include <catch2/catch.hpp>

#include <cmath>

#include <nlohmann/json.hpp>

#include "eval/calibration.h"
#include "eval/evaluation_summary.h"
#include "eval/quantile.h"
#include "eval/predictions_file.h"
#include "test_support.h"
#include "util/error.h"
#include "util/rng.h"

using namespace abmll;

namespace {

std::vector<eval::TaskResult> random_tasks() {
  Rng rng(4);
  std::vector<eval::TaskResult> tasks;
  for (int t = 0; t < 3; ++t) {
    eval::TaskResult task{"task" + std::to_string(t), {}, {{"support_size", 4}}};
    for (int i = 0; i < 20 + 7 * t; ++i) {
      const double p = 0.5 + 0.5 * rng.uniform();
      const auto label = static_cast<std::int64_t>(rng.below(2));
      task.queries.push_back({i, {p, 1 - p}, {std::log(p), std::log(1 - p)}, label, "f:" + std::to_string(i)});
    }
    tasks.push_back(std::move(task));
  }
  return tasks;
}

}  // namespace

TEST_CASE("evaluation summary: quantiles interpolate as numpy's default does", "[eval]") {
  CHECK(eval::quantile({3, 1, 2, 4}, 0.5) == Approx(2.5));
  CHECK(eval::quantile({3, 1, 2, 4}, 0.025) == Approx(1.075));  // numpy.quantile([1,2,3,4], 0.025)
  CHECK(eval::quantile({3, 1, 2, 4}, 1.0) == 4);
  CHECK(eval::quantile({7}, 0.975) == 7);
}

TEST_CASE("evaluation summary: metrics per task, over tasks and pooled, with bootstrap intervals", "[eval]") {
  const auto tasks = random_tasks();
  const nlohmann::json s = eval::summarize(tasks, {15, 200, 7});
  REQUIRE(s["per_task"].size() == 3);
  std::vector<eval::CategoricalPrediction> pooled;
  double mean_accuracy = 0, mean_ece = 0;
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    std::vector<eval::CategoricalPrediction> own;
    for (const auto& q : tasks[t].queries) own.push_back({q.probs, q.label});
    pooled.insert(pooled.end(), own.begin(), own.end());
    const auto m = eval::calibration_metrics(own, 15);
    const auto& entry = s["per_task"][t];
    CHECK(entry["task"] == tasks[t].task);
    CHECK(entry["support_size"] == 4);
    CHECK(entry["accuracy"].get<double>() == m.accuracy);
    CHECK(entry["ece"].get<double>() == m.ece);
    mean_accuracy += m.accuracy / 3;
    mean_ece += m.ece / 3;
  }
  const auto& mean = s["aggregate"]["mean_over_tasks"];
  CHECK(mean["accuracy"].get<double>() == Approx(mean_accuracy));
  CHECK(mean["ece"].get<double>() == Approx(mean_ece));
  const auto& all = s["aggregate"]["pooled"];
  const auto m = eval::calibration_metrics(pooled, 15);
  CHECK(all["n"] == pooled.size());
  CHECK(all["accuracy"].get<double>() == m.accuracy);
  CHECK(all["ece"].get<double>() == m.ece);
  CHECK(all["bins"].size() == 16);
  for (const auto* part : {&mean, &all})
    for (const char* key : {"accuracy", "ece"}) {
      const auto ci = (*part)[std::string(key) + "_ci95"];
      INFO(key << " " << ci.dump() << " point " << (*part)[key]);
      CHECK(ci[0].get<double>() <= ci[1].get<double>());
      CHECK(ci[1].get<double>() - ci[0].get<double>() > 0);
      if (std::string(key) == "accuracy") {  // ECE's bootstrap is biased upwards; accuracy's brackets the point
        CHECK(ci[0].get<double>() <= (*part)[key].get<double>());
        CHECK((*part)[key].get<double>() <= ci[1].get<double>());
      }
    }
  CHECK(eval::summarize(tasks, {15, 200, 7}) == s);          // same seed: same intervals
  CHECK(eval::summarize(tasks, {15, 200, 8})["aggregate"] != s["aggregate"]);

  // All right with certainty: every interval collapses.
  eval::TaskResult sure{"sure", {{0, {1.0, 0.0}, {0, -50}, 0, "a"}, {1, {0.0, 1.0}, {-50, 0}, 1, "b"}}, {}};
  const nlohmann::json c = eval::summarize({sure}, {15, 50, 1});
  CHECK(c["aggregate"]["pooled"]["accuracy_ci95"] == nlohmann::json::array({1.0, 1.0}));
  CHECK(c["aggregate"]["pooled"]["ece_ci95"] == nlohmann::json::array({0.0, 0.0}));
  CHECK_THROWS_AS(eval::summarize({}, {}), InputError);
}

TEST_CASE("evaluation summary: the predictions file reads back with read_predictions", "[eval]") {
  test::ScratchDir dir;
  const auto tasks = random_tasks();
  eval::write_predictions(dir / "predictions.jsonl", tasks);
  const auto records = eval::read_predictions(dir / "predictions.jsonl");
  REQUIRE(records.size() == 20 + 27 + 34);
  CHECK(records[21].probs == tasks[1].queries[1].probs);  // doubles round-trip exactly
  CHECK(records[21].label == tasks[1].queries[1].label);
  CHECK(!records[21].logits);  // option log-likelihoods sit under their own key
}

TEST_CASE("evaluation summary: a task's result reads back from its JSON bit for bit", "[eval]") {
  eval::TaskResult task = random_tasks()[1];
  // Doubles whose shortest decimal forms are long, tiny or subnormal.
  task.queries[0].probs = {0.1 + 0.2, 1 - (0.1 + 0.2)};
  task.queries[0].loglik = {-1e-300, -4.9e-324};
  task.queries[1].expected_entropy = 1.0 / 7.0;
  task.extra["support_nll"] = {2.718281828459045, 1.0 / 3.0};
  const std::string text = eval::task_result_to_json(task).dump();
  const eval::TaskResult back = eval::task_result_from_json(nlohmann::json::parse(text));
  CHECK(back.task == task.task);
  CHECK(back.extra == task.extra);
  REQUIRE(back.queries.size() == task.queries.size());
  for (std::size_t i = 0; i < task.queries.size(); ++i) {
    const auto &a = task.queries[i], &b = back.queries[i];
    CHECK(a.id == b.id);
    CHECK(a.label == b.label);
    CHECK(a.source == b.source);
    CHECK(a.probs == b.probs);  // exact: the same doubles
    CHECK(a.loglik == b.loglik);
    CHECK(a.expected_entropy == b.expected_entropy);
  }
  // A record without the expected entropy (written before it was recorded) does not read: the task is recomputed.
  nlohmann::json old = eval::task_result_to_json(task);
  old["queries"][0].erase("expected_entropy");
  CHECK_THROWS(eval::task_result_from_json(old));
  CHECK_THROWS(eval::task_result_from_json(nlohmann::json::parse(R"({"task": "t", "queries": [{"id": 1.5}]})")));
}

TEST_CASE("calibration: bins pooled over prediction sets equal the metrics of their union", "[eval]") {
  std::vector<eval::CategoricalPrediction> all;
  std::vector<std::vector<eval::CalibrationBin>> sets;
  for (const auto& task : random_tasks()) {
    std::vector<eval::CategoricalPrediction> set;
    for (const auto& q : task.queries) set.push_back({q.probs, q.label});
    all.insert(all.end(), set.begin(), set.end());
    sets.push_back(eval::calibration_metrics(set, 10).bins);
  }
  // A set of confidence exactly 1, into the extra [1, 1] bin.
  sets.push_back(eval::calibration_metrics({{{1.0, 0.0}, 0}}, 10).bins);
  all.push_back({{1.0, 0.0}, 0});

  const eval::CalibrationMetrics union_metrics = eval::calibration_metrics(all, 10);
  const eval::CalibrationMetrics pooled = eval::pool_bins(sets);
  CHECK(pooled.n == union_metrics.n);
  CHECK(pooled.accuracy == Approx(union_metrics.accuracy).epsilon(1e-12));
  CHECK(pooled.ece == Approx(union_metrics.ece).epsilon(1e-12));
  CHECK(pooled.mce == Approx(union_metrics.mce).epsilon(1e-12));
  CHECK(std::isnan(pooled.nll));
  REQUIRE(pooled.bins.size() == union_metrics.bins.size());
  for (std::size_t b = 0; b < pooled.bins.size(); ++b) {
    CHECK(pooled.bins[b].count == union_metrics.bins[b].count);
    CHECK(pooled.bins[b].lo == union_metrics.bins[b].lo);
    CHECK(pooled.bins[b].accuracy == Approx(union_metrics.bins[b].accuracy).margin(1e-12));
    CHECK(pooled.bins[b].confidence == Approx(union_metrics.bins[b].confidence).margin(1e-12));
  }
  CHECK(pooled.bins.back().count == 1);
}

TEST_CASE("calibration: the confidence's AUROC counts pairs of right and wrong answers, ties half", "[eval]") {
  // Right answers at confidence 0.9, 0.7, 0.6; wrong ones at 0.7, 0.5 (two options, label 0 right).
  const std::vector<eval::CategoricalPrediction> predictions = {
      {{0.9, 0.1}, 0}, {{0.7, 0.3}, 0}, {{0.6, 0.4}, 0}, {{0.3, 0.7}, 0}, {{0.5, 0.5}, 1}};
  // Pairs (right, wrong) ordered right: 0.9 beats both, 0.7 ties one and beats one, 0.6 beats one: 4.5 of 6.
  CHECK(eval::confidence_auroc(predictions) == Approx(4.5 / 6).epsilon(1e-15));
  CHECK(std::isnan(eval::confidence_auroc({{{0.9, 0.1}, 0}, {{0.2, 0.8}, 1}})));  // all right
  CHECK(std::isnan(eval::confidence_auroc({{{0.9, 0.1}, 1}})));                   // all wrong

  // In the summary: per task (null where a task has only right answers), its mean over the tasks where it is
  // defined, and pooled.
  std::vector<eval::TaskResult> tasks = random_tasks();
  tasks[1].queries.resize(3);
  for (auto& q : tasks[1].queries) q.label = q.probs[0] >= q.probs[1] ? 0 : 1;
  const nlohmann::json summary = eval::summarize(tasks, {15, 0, 0});
  std::vector<eval::CategoricalPrediction> pooled;
  double mean = 0;
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    std::vector<eval::CategoricalPrediction> task;
    for (const auto& q : tasks[t].queries) task.push_back({q.probs, q.label});
    pooled.insert(pooled.end(), task.begin(), task.end());
    const nlohmann::json& got = summary["per_task"][t]["auroc"];
    if (t == 1) {
      CHECK(got.is_null());
    } else {
      CHECK(got.get<double>() == Approx(eval::confidence_auroc(task)));
      mean += got.get<double>() / 2;
    }
  }
  CHECK(summary["aggregate"]["mean_over_tasks"]["auroc"].get<double>() == Approx(mean));
  CHECK(summary["aggregate"]["pooled"]["auroc"].get<double>() == Approx(eval::confidence_auroc(pooled)));
}
