// Paired differences between a method and a baseline on the same queries (see paired_comparison.h).
#include "eval/paired_comparison.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "eval/calibration.h"
#include "eval/quantile.h"
#include "eval/selective_prediction.h"
#include "util/error.h"
#include "util/rng.h"

namespace abmll::eval {
namespace {

// One (seed, task): its queries' predictions, method[i] and baseline[i] for the same query.
struct Stratum {
  std::vector<CategoricalPrediction> method, baseline;
};

struct Figures {
  double accuracy = 0, ece = 0, nll = 0, brier = 0, aurc = 0;
  double auroc = 0;  // NaN where either side's AUROC is undefined (every query right, or every one wrong)
};

std::string where(const std::filesystem::path& file, const PredictionRecord& r) {
  return fmt::format("{}:{}", file.string(), r.line);
}

std::string describe(const PredictionRecord& r) {
  return fmt::format("query (task {}, id {}, source '{}')", r.task, r.id ? std::to_string(*r.id) : "none", r.source);
}

std::string key_of(const PredictionRecord& r) {
  return fmt::format("{}\n{}\n{}", r.task, r.id ? std::to_string(*r.id) : "", r.source);
}

void require_task(const std::filesystem::path& file, const PredictionRecord& r) {
  if (r.task.empty())
    throw InputError(fmt::format("{}: no \"task\"; a paired comparison needs predictions as `abmll evaluate` "
                                 "writes them",
                                 where(file, r)));
}

// The seed's queries paired by identity, grouped by task (in task name order).
std::vector<Stratum> pair_queries(const PairedSeed& seed) {
  std::map<std::string, std::size_t> baseline_at;
  for (std::size_t i = 0; i < seed.baseline.size(); ++i) {
    const PredictionRecord& r = seed.baseline[i];
    require_task(seed.baseline_file, r);
    if (!baseline_at.emplace(key_of(r), i).second)
      throw InputError(fmt::format("{}: {} appears twice", where(seed.baseline_file, r), describe(r)));
  }
  std::map<std::string, Stratum> by_task;
  std::vector<bool> paired(seed.baseline.size(), false);
  for (const PredictionRecord& m : seed.method) {
    require_task(seed.method_file, m);
    const auto found = baseline_at.find(key_of(m));
    if (found == baseline_at.end())
      throw InputError(fmt::format("{}: {} is not in {}: the two runs did not score the same queries",
                                   where(seed.method_file, m), describe(m), seed.baseline_file.string()));
    if (paired[found->second])
      throw InputError(fmt::format("{}: {} appears twice", where(seed.method_file, m), describe(m)));
    paired[found->second] = true;
    const PredictionRecord& b = seed.baseline[found->second];
    if (m.label != b.label || m.probs.size() != b.probs.size())
      throw InputError(fmt::format("{} and {}: {} has label {} of {} options in one and {} of {} in the other: the "
                                   "two runs did not score the same data",
                                   where(seed.method_file, m), where(seed.baseline_file, b), describe(m), m.label,
                                   m.probs.size(), b.label, b.probs.size()));
    Stratum& s = by_task[m.task];
    s.method.push_back({m.probs, m.label});
    s.baseline.push_back({b.probs, b.label});
  }
  for (std::size_t i = 0; i < seed.baseline.size(); ++i)
    if (!paired[i])
      throw InputError(fmt::format("{}: {} is not in {}: the two runs did not score the same queries",
                                   where(seed.baseline_file, seed.baseline[i]), describe(seed.baseline[i]),
                                   seed.method_file.string()));
  std::vector<Stratum> strata;
  for (auto& [task, s] : by_task) strata.push_back(std::move(s));
  return strata;
}

// method - baseline on the predictions at `rows` of the stratum.
Figures difference_at(const Stratum& s, const std::vector<std::size_t>& rows, int bins,
                      std::vector<CategoricalPrediction>& a, std::vector<CategoricalPrediction>& b) {
  a.clear();
  b.clear();
  for (std::size_t i : rows) {
    a.push_back(s.method[i]);
    b.push_back(s.baseline[i]);
  }
  const CalibrationMetrics ma = calibration_metrics(a, bins), mb = calibration_metrics(b, bins);
  return {ma.accuracy - mb.accuracy, ma.ece - mb.ece, ma.nll - mb.nll, ma.brier - mb.brier,
          selective_risk(a).aurc - selective_risk(b).aurc, confidence_auroc(a) - confidence_auroc(b)};
}

// The mean over seeds of the mean over each seed's tasks, of `per_task` differences; AUROC's over the tasks where
// it is defined on both sides, and the seeds that have one (NaN when none has).
Figures average(const std::vector<std::vector<Figures>>& per_task) {
  Figures mean;
  double auroc_sum = 0;
  int auroc_seeds = 0;
  for (const auto& tasks : per_task) {
    Figures seed_mean;
    double auroc = 0;
    int auroc_tasks = 0;
    for (const Figures& f : tasks) {
      const double w = 1.0 / static_cast<double>(tasks.size());
      seed_mean.accuracy += w * f.accuracy, seed_mean.ece += w * f.ece, seed_mean.nll += w * f.nll;
      seed_mean.brier += w * f.brier, seed_mean.aurc += w * f.aurc;
      if (!std::isnan(f.auroc)) auroc += f.auroc, ++auroc_tasks;
    }
    const double w = 1.0 / static_cast<double>(per_task.size());
    mean.accuracy += w * seed_mean.accuracy, mean.ece += w * seed_mean.ece, mean.nll += w * seed_mean.nll;
    mean.brier += w * seed_mean.brier, mean.aurc += w * seed_mean.aurc;
    if (auroc_tasks > 0) auroc_sum += auroc / auroc_tasks, ++auroc_seeds;
  }
  mean.auroc = auroc_seeds > 0 ? auroc_sum / auroc_seeds : std::nan("");
  return mean;
}

std::string signed_interval(const Difference& d, double scale, int digits) {
  const std::string text = fmt::format("{:+.{}f} [{:+.{}f}, {:+.{}f}]", d.value * scale, digits, d.lo * scale, digits,
                                       d.hi * scale, digits);
  return d.lo > 0 || d.hi < 0 ? "**" + text + "**" : text;
}

nlohmann::json difference_json(const Difference& d) {
  return {{"difference", metric_json(d.value)},
          {"ci95", std::isnan(d.lo) ? nlohmann::json() : nlohmann::json::array({d.lo, d.hi})}};
}

}  // namespace

PairedDifference paired_difference(const std::vector<PairedSeed>& seeds, const PairedOptions& options) {
  if (seeds.empty()) throw Error("paired_difference: no seed");
  std::vector<std::vector<Stratum>> strata;
  PairedDifference out;
  for (const PairedSeed& seed : seeds) {
    strata.push_back(pair_queries(seed));
    out.tasks += strata.back().size();
    out.queries += seed.method.size();
  }
  out.seeds = seeds.size();

  std::vector<CategoricalPrediction> a, b;
  std::vector<std::size_t> rows;

  // Point estimate: every query once.
  std::vector<std::vector<Figures>> per_task;
  for (const auto& tasks : strata) {
    per_task.emplace_back();
    for (const Stratum& s : tasks) {
      rows.resize(s.method.size());
      for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
      per_task.back().push_back(difference_at(s, rows, options.bins, a, b));
    }
  }
  const Figures point = average(per_task);

  std::vector<double> accuracy, ece, nll, brier, aurc, auroc;
  Rng rng = Rng::stream(options.seed, "paired bootstrap");
  for (int r = 0; r < options.resamples; ++r) {
    for (std::size_t k = 0; k < strata.size(); ++k)
      for (std::size_t t = 0; t < strata[k].size(); ++t) {
        const Stratum& s = strata[k][t];
        rows.resize(s.method.size());
        for (std::size_t& row : rows) row = static_cast<std::size_t>(rng.below(s.method.size()));
        per_task[k][t] = difference_at(s, rows, options.bins, a, b);
      }
    const Figures f = average(per_task);
    accuracy.push_back(f.accuracy);
    ece.push_back(f.ece);
    nll.push_back(f.nll);
    brier.push_back(f.brier);
    aurc.push_back(f.aurc);
    auroc.push_back(f.auroc);
  }
  // A label given probability 0 makes an NLL infinite, and a difference of two infinite ones NaN: such a figure has
  // no interval (NaN, written as null), and NaN never reaches the sort of the quantiles.
  auto with_interval = [&](double value, const std::vector<double>& draws) {
    if (draws.empty()) return Difference{value, value, value};
    if (std::isnan(value) || std::any_of(draws.begin(), draws.end(), [](double v) { return std::isnan(v); }))
      return Difference{value, std::nan(""), std::nan("")};
    return Difference{value, quantile(draws, 0.025), quantile(draws, 0.975)};
  };
  out.accuracy = with_interval(point.accuracy, accuracy);
  out.ece = with_interval(point.ece, ece);
  out.nll = with_interval(point.nll, nll);
  out.brier = with_interval(point.brier, brier);
  out.aurc = with_interval(point.aurc, aurc);
  out.auroc = with_interval(point.auroc, auroc);
  return out;
}

std::vector<PairedRow> paired_table(const std::vector<RunResult>& runs, const std::string& baseline,
                                    int resamples) {
  std::set<std::string> methods;
  for (const RunResult& run : runs) methods.insert(run.method);
  if (!methods.count(baseline)) {
    std::string names;
    for (const auto& m : methods) names += (names.empty() ? "" : ", ") + m;
    throw InputError(fmt::format("--baseline {}: no run of that method (the runs' methods: {})", baseline, names));
  }
  std::map<std::filesystem::path, std::vector<PredictionRecord>> read;
  auto predictions_of = [&](const RunResult& run) -> const std::vector<PredictionRecord>& {
    const std::filesystem::path file = run.source.parent_path() / "predictions.jsonl";
    auto it = read.find(file);
    if (it == read.end()) it = read.emplace(file, read_predictions(file)).first;
    return it->second;
  };
  // The evaluation's eval.bins: its pooled bins hold one more, the closing [1, 1] (calibration.h).
  auto bins_of = [](const RunResult& run) { return run.bins.empty() ? 15 : static_cast<int>(run.bins.size()) - 1; };

  // The baseline run a method's run is compared with: of the same benchmark, model and seed, and where the
  // baseline has several such runs (the table is split by keys its runs differ in), of the same variant.
  auto baseline_of = [&](const RunResult& run) -> const RunResult* {
    std::vector<const RunResult*> candidates;
    for (const RunResult& base : runs)
      if (base.method == baseline && base.benchmark == run.benchmark && base.model == run.model &&
          base.seed == run.seed)
        candidates.push_back(&base);
    if (candidates.size() <= 1) return candidates.empty() ? nullptr : candidates.front();
    for (const RunResult* base : candidates)
      if (base->variant == run.variant) return base;
    throw InputError(fmt::format("{}: {} runs of {} with seed {} on {} with {}, none of them with this run's values "
                                 "of the keys the table is split by; which to compare with is ambiguous",
                                 run.source.string(), candidates.size(), baseline, run.seed, run.benchmark,
                                 run.model));
  };

  std::vector<PairedRow> rows;
  for (const TableRow& row : results_table(runs)) {
    if (row.method == baseline) continue;
    PairedRow paired{row.benchmark, row.model, row.method, row.variant, {}, {}};
    std::vector<PairedSeed> seeds;
    std::optional<int> bins;
    for (const RunResult& run : runs) {
      if (!in_row(run, row)) continue;
      if (const RunResult* found = baseline_of(run)) {
        const RunResult& base = *found;
        if (bins_of(run) != bins_of(base) || (bins && *bins != bins_of(run)))
          throw InputError(fmt::format("{} and {}: binned with {} and {} confidence bins; a paired comparison needs "
                                       "the same eval.bins",
                                       run.source.string(), base.source.string(), bins_of(run), bins_of(base)));
        bins = bins_of(run);
        seeds.push_back({run.seed, run.source.parent_path() / "predictions.jsonl",
                         base.source.parent_path() / "predictions.jsonl", predictions_of(run), predictions_of(base)});
        paired.seeds.push_back(run.seed);
      }
    }
    if (seeds.empty()) continue;
    paired.difference = paired_difference(seeds, {*bins, resamples, 0});
    rows.push_back(std::move(paired));
  }
  return rows;
}

std::string paired_markdown(const std::vector<PairedRow>& rows, const std::string& baseline, int resamples) {
  std::string keys, rule;
  if (!rows.empty())
    for (const auto& [key, value] : rows.front().variant) keys += " " + key + " |", rule += "---|";
  std::string out = fmt::format(
      "\n## Paired differences from {0}\n\n"
      "Method minus {0} on the same queries: the table's figures over the seeds both have, with 95% intervals from "
      "a paired bootstrap over queries ({1} resamples, stratified by seed and task); intervals that exclude 0 are "
      "in bold.\n\n"
      "| benchmark | model | method |{2} seeds | queries | Δ accuracy (points) | Δ ECE | Δ NLL | Δ Brier | Δ AUROC "
      "| Δ AURC |\n"
      "|---|---|---|{3}---|---|---|---|---|---|---|---|\n",
      baseline, resamples, keys, rule);
  for (const PairedRow& r : rows) {
    const PairedDifference& d = r.difference;
    std::string values;
    for (const auto& [key, value] : r.variant) values += " " + value + " |";
    out += fmt::format("| {} | {} | {} |{} {} | {} | {} | {} | {} | {} | {} | {} |\n", r.benchmark, r.model, r.method,
                       values, r.seeds.size(), d.queries, signed_interval(d.accuracy, 100, 1),
                       signed_interval(d.ece, 1, 3), signed_interval(d.nll, 1, 3), signed_interval(d.brier, 1, 3),
                       std::isnan(d.auroc.value) ? std::string("–") : signed_interval(d.auroc, 1, 3),
                       signed_interval(d.aurc, 1, 3));
  }
  return out;
}

nlohmann::json paired_json(const std::vector<PairedRow>& rows, const std::string& baseline, int resamples) {
  nlohmann::json list = nlohmann::json::array();
  for (const PairedRow& r : rows) {
    const PairedDifference& d = r.difference;
    nlohmann::json variant = nlohmann::json::object();
    for (const auto& [key, value] : r.variant) variant[key] = value;
    list.push_back({{"benchmark", r.benchmark},
                    {"model", r.model},
                    {"method", r.method},
                    {"variant", std::move(variant)},
                    {"seeds", r.seeds},
                    {"tasks", d.tasks},
                    {"queries", d.queries},
                    {"accuracy", difference_json(d.accuracy)},
                    {"ece", difference_json(d.ece)},
                    {"nll", difference_json(d.nll)},
                    {"brier", difference_json(d.brier)},
                    {"auroc", difference_json(d.auroc)},
                    {"aurc", difference_json(d.aurc)}});
  }
  return {{"baseline", baseline}, {"resamples", resamples}, {"rows", std::move(list)}};
}

}  // namespace abmll::eval
