// Paired differences between two methods on the same queries (eval/paired_comparison.h): the point differences
// against the per-task metrics computed directly, a method against itself, the bootstrap interval of a paired
// accuracy difference against the normal approximation, pairing by identity whatever the line order, and the
// refusals of predictions that do not pair.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "eval/calibration.h"
#include "eval/paired_comparison.h"
#include "eval/selective_prediction.h"
#include "test_support.h"

namespace {

namespace eval = abmll::eval;
using abmll::test::input_error_of;

// A query of `task` with two options whose first has probability p; label as given.
eval::PredictionRecord query(const std::string& task, std::int64_t id, double p, std::int64_t label) {
  eval::PredictionRecord r;
  r.line = id + 1;
  r.task = task;
  r.id = id;
  r.source = fmt::format("data/{}.tsv:{}", task, id + 1);
  r.probs = {p, 1 - p};
  r.label = label;
  return r;
}

// Two tasks of `n` queries each, probabilities drawn from `rng`, labels shared by both methods.
eval::PairedSeed random_seed(long long seed, int n, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0.02, 0.98);
  eval::PairedSeed s;
  s.seed = seed;
  s.method_file = "method/predictions.jsonl";
  s.baseline_file = "baseline/predictions.jsonl";
  for (const char* task : {"alpha", "beta"})
    for (int i = 0; i < n; ++i) {
      const std::int64_t label = u(rng) < 0.5 ? 0 : 1;
      s.method.push_back(query(task, i, u(rng), label));
      s.baseline.push_back(query(task, i, u(rng), label));
    }
  return s;
}

std::vector<eval::CategoricalPrediction> of_task(const std::vector<eval::PredictionRecord>& records,
                                                 const std::string& task) {
  std::vector<eval::CategoricalPrediction> out;
  for (const auto& r : records)
    if (r.task == task) out.push_back({r.probs, r.label});
  return out;
}

}  // namespace

TEST_CASE("paired comparison: differences of the per-task figures, averaged over tasks and seeds", "[eval]") {
  std::mt19937 rng(5);
  const std::vector<eval::PairedSeed> seeds = {random_seed(0, 40, rng), random_seed(1, 40, rng)};
  const eval::PairedDifference d = eval::paired_difference(seeds, {15, 200, 0});
  double accuracy = 0, ece = 0, nll = 0, brier = 0, auroc = 0, aurc = 0;
  for (const auto& s : seeds)
    for (const char* task : {"alpha", "beta"}) {
      const auto a = eval::calibration_metrics(of_task(s.method, task), 15);
      const auto b = eval::calibration_metrics(of_task(s.baseline, task), 15);
      accuracy += (a.accuracy - b.accuracy) / 4, ece += (a.ece - b.ece) / 4, nll += (a.nll - b.nll) / 4;
      brier += (a.brier - b.brier) / 4;
      auroc +=
          (eval::confidence_auroc(of_task(s.method, task)) - eval::confidence_auroc(of_task(s.baseline, task))) / 4;
      aurc += (eval::selective_risk(of_task(s.method, task)).aurc -
               eval::selective_risk(of_task(s.baseline, task)).aurc) / 4;
    }
  CHECK(d.seeds == 2);
  CHECK(d.tasks == 4);
  CHECK(d.queries == 160);
  CHECK(d.accuracy.value == Approx(accuracy).margin(1e-12));
  CHECK(d.ece.value == Approx(ece).margin(1e-12));
  CHECK(d.nll.value == Approx(nll).margin(1e-12));
  CHECK(d.brier.value == Approx(brier).margin(1e-12));
  CHECK(d.auroc.value == Approx(auroc).margin(1e-12));
  CHECK(d.aurc.value == Approx(aurc).margin(1e-12));
  for (const eval::Difference* x : {&d.accuracy, &d.ece, &d.nll, &d.brier, &d.auroc, &d.aurc}) CHECK(x->lo < x->hi);

  // Pairing is by identity, not by line: the method's lines in another order give the same figures.
  std::vector<eval::PairedSeed> shuffled = seeds;
  for (auto& s : shuffled) std::reverse(s.method.begin(), s.method.end());
  const eval::PairedDifference again = eval::paired_difference(shuffled, {15, 200, 0});
  CHECK(again.nll.value == Approx(d.nll.value).margin(1e-12));

  // A method against itself: nothing to tell apart, in every resample.
  eval::PairedSeed self = seeds[0];
  self.baseline = self.method;
  const eval::PairedDifference none = eval::paired_difference({self}, {15, 200, 0});
  for (const eval::Difference* x : {&none.accuracy, &none.ece, &none.nll, &none.brier, &none.auroc, &none.aurc}) {
    CHECK(x->value == 0);
    CHECK(x->lo == 0);
    CHECK(x->hi == 0);
  }
  // Without resamples, the interval is the point.
  const eval::PairedDifference point = eval::paired_difference(seeds, {15, 0, 0});
  CHECK(point.accuracy.lo == point.accuracy.value);
  CHECK(point.accuracy.hi == point.accuracy.value);
}

TEST_CASE("paired comparison: the accuracy interval matches the normal approximation of a paired mean", "[eval]") {
  // One task of 4000 queries where the method is right on 70% and the baseline on 65%, their errors correlated.
  // The bootstrap distribution of the accuracy difference is that of the mean of the per-query differences d_i in
  // {-1, 0, 1}: half-width 1.96 sd(d) / sqrt(n).
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  eval::PairedSeed s;
  s.method_file = "m.jsonl";
  s.baseline_file = "b.jsonl";
  const int n = 4000;
  std::vector<double> d;
  for (int i = 0; i < n; ++i) {
    const double shared = u(rng);
    const bool method_right = shared < 0.6 || u(rng) < 0.25, baseline_right = shared < 0.6 || u(rng) < 0.125;
    s.method.push_back(query("t", i, method_right ? 0.8 : 0.3, 0));
    s.baseline.push_back(query("t", i, baseline_right ? 0.7 : 0.4, 0));
    d.push_back(double(method_right) - double(baseline_right));
  }
  double mean = 0, var = 0;
  for (double x : d) mean += x / n;
  for (double x : d) var += (x - mean) * (x - mean) / (n - 1);
  const double half_width = 1.96 * std::sqrt(var / n);
  const eval::PairedDifference got = eval::paired_difference({s}, {15, 4000, 3});
  CHECK(got.accuracy.value == Approx(mean).margin(1e-12));
  WARN("paired accuracy difference " << mean << ": bootstrap interval [" << got.accuracy.lo << ", "
                                     << got.accuracy.hi << "], normal approximation +-" << half_width);
  CHECK((got.accuracy.hi - got.accuracy.lo) / 2 == Approx(half_width).epsilon(0.08));
  CHECK((got.accuracy.hi + got.accuracy.lo) / 2 == Approx(mean).margin(0.1 * half_width));
}

TEST_CASE("paired comparison: predictions that do not pair are refused, naming the files", "[eval]") {
  std::mt19937 rng(2);
  const eval::PairedSeed good = random_seed(0, 5, rng);
  auto refused = [](const eval::PairedSeed& s) {
    return input_error_of([&] { eval::paired_difference({s}, {15, 10, 0}); });
  };

  eval::PairedSeed s = good;
  s.baseline[3].task.clear();
  CHECK_THAT(refused(s), Catch::Contains("baseline/predictions.jsonl:4: no \"task\""));

  s = good;
  s.method.pop_back();
  CHECK_THAT(refused(s), Catch::Contains("baseline/predictions.jsonl:5") &&
                             Catch::Contains("is not in method/predictions.jsonl"));

  s = good;
  s.method[2].source = "elsewhere.tsv:9";
  CHECK_THAT(refused(s), Catch::Contains("method/predictions.jsonl:3") &&
                             Catch::Contains("the two runs did not score the same queries"));

  s = good;
  s.method.push_back(s.method.front());
  CHECK_THAT(refused(s), Catch::Contains("appears twice"));

  s = good;
  s.baseline.push_back(s.baseline.front());
  CHECK_THAT(refused(s), Catch::Contains("baseline/predictions.jsonl:1") && Catch::Contains("appears twice"));

  s = good;
  s.method[1].label = 1 - s.method[1].label;
  CHECK_THAT(refused(s), Catch::Contains("did not score the same data"));

  s = good;
  s.method[1].probs = {0.2, 0.3, 0.5};
  CHECK_THAT(refused(s), Catch::Contains("of 3 options in one and"));
}

TEST_CASE("paired comparison: an infinite NLL gives no interval rather than a sort over NaN", "[eval]") {
  eval::PairedSeed s;
  s.method_file = "m.jsonl";
  s.baseline_file = "b.jsonl";
  for (int i = 0; i < 6; ++i) {
    s.method.push_back(query("t", i, i == 2 ? 0.0 : 0.7, 0));    // the label given probability 0 once
    s.baseline.push_back(query("t", i, i == 2 ? 0.0 : 0.6, 0));  // by both: inf - inf
  }
  const eval::PairedDifference d = eval::paired_difference({s}, {15, 100, 0});
  CHECK(std::isnan(d.nll.value));
  CHECK(std::isnan(d.nll.lo));
  CHECK(std::isnan(d.nll.hi));
  CHECK(d.accuracy.lo <= d.accuracy.hi);  // the other figures keep theirs
  CHECK(d.brier.lo <= d.brier.hi);

  eval::PairedRow row{"b", "m", "x", {}, {0}, d};
  const nlohmann::json j = eval::paired_json({row}, "y", 100);
  CHECK(j["rows"][0]["nll"]["difference"].is_null());
  CHECK(j["rows"][0]["nll"]["ci95"].is_null());
  CHECK(j["rows"][0]["accuracy"]["ci95"].is_array());
}

TEST_CASE("paired comparison: AUROC's difference over the tasks where both runs have one", "[eval]") {
  std::mt19937 rng(9);
  eval::PairedSeed s = random_seed(0, 30, rng);
  // Task "sure": every query right in both runs (probability 0.9 of option 0, the label), so neither has an AUROC.
  for (int i = 0; i < 10; ++i) {
    s.method.push_back(query("sure", i, 0.9, 0));
    s.baseline.push_back(query("sure", i, 0.8, 0));
  }
  const eval::PairedDifference d = eval::paired_difference({s}, {15, 300, 0});
  double auroc = 0, aurc = 0;
  for (const char* task : {"alpha", "beta"})
    auroc += (eval::confidence_auroc(of_task(s.method, task)) - eval::confidence_auroc(of_task(s.baseline, task))) / 2;
  for (const char* task : {"alpha", "beta", "sure"})
    aurc += (eval::selective_risk(of_task(s.method, task)).aurc -
             eval::selective_risk(of_task(s.baseline, task)).aurc) / 3;
  CHECK(d.auroc.value == Approx(auroc).margin(1e-12));  // "sure" left out
  CHECK(d.aurc.value == Approx(aurc).margin(1e-12));    // "sure" in (its AURC is 0 on both sides)
  CHECK(d.auroc.lo < d.auroc.hi);

  // Only such tasks: no AUROC difference, and no interval; the table shows a dash, the JSON null.
  eval::PairedSeed sure;
  sure.method_file = "m.jsonl";
  sure.baseline_file = "b.jsonl";
  for (int i = 0; i < 10; ++i) {
    sure.method.push_back(query("sure", i, 0.9, 0));
    sure.baseline.push_back(query("sure", i, 0.8, 0));
  }
  const eval::PairedDifference none = eval::paired_difference({sure}, {15, 100, 0});
  CHECK(std::isnan(none.auroc.value));
  CHECK(std::isnan(none.auroc.lo));
  CHECK(none.aurc.value == 0);
  eval::PairedRow row{"b", "m", "x", {}, {0}, none};
  CHECK(eval::paired_json({row}, "y", 100)["rows"][0]["auroc"]["difference"].is_null());
  CHECK(eval::paired_markdown({row}, "y", 100).find("| – | +0.000 [+0.000, +0.000] |") != std::string::npos);
}
