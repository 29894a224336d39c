#include "eval/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace abmll::eval {

std::vector<float> bin_edges(int bins) {
  std::vector<float> edges(bins + 1);
  for (int k = 0; k <= bins; ++k) edges[k] = static_cast<float>(k) / static_cast<float>(bins);
  return edges;
}

CalibrationMetrics calibration_metrics(const std::vector<CategoricalPrediction>& predictions, int bins) {
  if (predictions.empty()) throw std::invalid_argument("calibration_metrics: no predictions");
  if (bins < 1) throw std::invalid_argument("calibration_metrics: bins must be >= 1");
  const std::vector<float> edges = bin_edges(bins);

  CalibrationMetrics m;
  m.n = static_cast<std::int64_t>(predictions.size());
  m.bins.resize(bins + 1);
  for (int b = 0; b < bins; ++b) m.bins[b].lo = double(b) / bins, m.bins[b].hi = double(b + 1) / bins;
  m.bins[bins].lo = m.bins[bins].hi = 1.0;

  double correct_total = 0, nll_total = 0, brier_total = 0;
  for (const auto& p : predictions) {
    // First option with the largest probability, as torch.max(dim) picks it.
    const auto top = std::max_element(p.probs.begin(), p.probs.end());
    const double confidence = *top;
    const bool correct = (top - p.probs.begin()) == p.label;
    correct_total += correct;
    nll_total += -std::log(p.probs[p.label]);
    for (std::size_t k = 0; k < p.probs.size(); ++k) {
      const double target = static_cast<std::int64_t>(k) == p.label ? 1.0 : 0.0;
      brier_total += (p.probs[k] - target) * (p.probs[k] - target);
    }
    // bucketize(right=True) - 1: the last edge <= confidence.
    const float binned = static_cast<float>(confidence);
    const int b = static_cast<int>(std::upper_bound(edges.begin(), edges.end(), binned) - edges.begin()) - 1;
    CalibrationBin& bin = m.bins[std::clamp(b, 0, bins)];
    ++bin.count;
    bin.accuracy += correct;
    bin.confidence += confidence;
  }
  for (auto& bin : m.bins) {
    if (bin.count == 0) continue;
    bin.accuracy /= bin.count;
    bin.confidence /= bin.count;
    const double gap = std::abs(bin.accuracy - bin.confidence);
    m.ece += gap * bin.count / m.n;
    m.mce = std::max(m.mce, gap);
  }
  m.accuracy = correct_total / m.n;
  m.nll = nll_total / m.n;
  m.brier = brier_total / m.n;
  return m;
}

double confidence_auroc(const std::vector<CategoricalPrediction>& predictions) {
  struct Scored {
    double confidence;
    bool correct;
  };
  std::vector<Scored> scored;
  scored.reserve(predictions.size());
  double right = 0;
  for (const auto& p : predictions) {
    const auto top = std::max_element(p.probs.begin(), p.probs.end());
    scored.push_back({*top, (top - p.probs.begin()) == p.label});
    right += scored.back().correct ? 1 : 0;
  }
  const double wrong = static_cast<double>(scored.size()) - right;
  if (right == 0 || wrong == 0) return std::numeric_limits<double>::quiet_NaN();
  std::sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) { return a.confidence < b.confidence; });
  // Sum of the right predictions' ranks (1-based), tied confidences sharing their mean rank.
  double rank_sum = 0;
  for (std::size_t i = 0; i < scored.size();) {
    std::size_t j = i;
    double tied_right = 0;
    while (j < scored.size() && scored[j].confidence == scored[i].confidence) tied_right += scored[j++].correct;
    rank_sum += tied_right * (static_cast<double>(i + 1 + j) / 2);
    i = j;
  }
  return (rank_sum - right * (right + 1) / 2) / (right * wrong);
}

nlohmann::json metric_json(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

CalibrationMetrics pool_bins(const std::vector<std::vector<CalibrationBin>>& sets) {
  if (sets.empty() || sets.front().empty()) throw std::invalid_argument("pool_bins: no bins");
  CalibrationMetrics m;
  m.bins = sets.front();
  for (auto& bin : m.bins) bin.count = 0, bin.accuracy = 0, bin.confidence = 0;
  for (const auto& bins : sets) {
    if (bins.size() != m.bins.size()) throw std::invalid_argument("pool_bins: different numbers of bins");
    for (std::size_t b = 0; b < bins.size(); ++b) {
      // Sums of correct answers and of confidences, from each set's means.
      m.bins[b].count += bins[b].count;
      m.bins[b].accuracy += bins[b].accuracy * static_cast<double>(bins[b].count);
      m.bins[b].confidence += bins[b].confidence * static_cast<double>(bins[b].count);
    }
  }
  double correct = 0;
  for (const auto& bin : m.bins) m.n += bin.count, correct += bin.accuracy;
  if (m.n == 0) throw std::invalid_argument("pool_bins: no predictions");
  for (auto& bin : m.bins) {
    if (bin.count == 0) continue;
    bin.accuracy /= static_cast<double>(bin.count);
    bin.confidence /= static_cast<double>(bin.count);
    const double gap = std::abs(bin.accuracy - bin.confidence);
    m.ece += gap * static_cast<double>(bin.count) / static_cast<double>(m.n);
    m.mce = std::max(m.mce, gap);
  }
  m.accuracy = correct / static_cast<double>(m.n);
  m.nll = std::numeric_limits<double>::quiet_NaN();
  m.brier = std::numeric_limits<double>::quiet_NaN();
  return m;
}

nlohmann::json to_json(const CalibrationMetrics& m) {
  nlohmann::json bins = nlohmann::json::array();
  for (const auto& b : m.bins)
    bins.push_back({{"lo", b.lo}, {"hi", b.hi}, {"count", b.count}, {"accuracy", b.accuracy},
                    {"confidence", b.confidence}});
  // JSON has no infinity: an infinite NLL (a label given probability 0) is written as null.
  const nlohmann::json nll = metric_json(m.nll);
  return {{"n", m.n},         {"accuracy", m.accuracy}, {"ece", m.ece}, {"mce", m.mce},
          {"nll", nll},       {"brier", m.brier},       {"bins", bins}};
}

}  // namespace abmll::eval
