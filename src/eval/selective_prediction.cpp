// Risk-coverage areas (see selective_prediction.h).
#include "eval/selective_prediction.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>

namespace abmll::eval {
namespace {

struct Scored {
  double confidence;
  bool wrong;
};

// The mean over k = 1..n of the error rate among the first k of `ranked`, each group of equal confidences counted
// in expectation over its orders: after K queries with E errors, the j-th of a group of m holding e errors brings
// the expected count to E + j e / m.
double area(const std::vector<Scored>& ranked) {
  double sum = 0, errors_before = 0;
  for (std::size_t i = 0; i < ranked.size();) {
    std::size_t end = i;
    double group_errors = 0;
    while (end < ranked.size() && ranked[end].confidence == ranked[i].confidence) group_errors += ranked[end++].wrong;
    const double m = static_cast<double>(end - i);
    for (std::size_t j = 1; j <= end - i; ++j)
      sum += (errors_before + static_cast<double>(j) * group_errors / m) / static_cast<double>(i + j);
    errors_before += group_errors;
    i = end;
  }
  return sum / static_cast<double>(ranked.size());
}

}  // namespace

SelectiveRisk selective_risk(const std::vector<CategoricalPrediction>& predictions) {
  if (predictions.empty()) throw std::invalid_argument("selective_risk: no predictions");
  std::vector<Scored> ranked;
  ranked.reserve(predictions.size());
  for (const auto& p : predictions) {
    const auto top = std::max_element(p.probs.begin(), p.probs.end());
    ranked.push_back({*top, (top - p.probs.begin()) != p.label});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Scored& a, const Scored& b) { return a.confidence > b.confidence; });
  SelectiveRisk out;
  out.aurc = area(ranked);
  // The best ranking: the right predictions first (distinct confidences, so no ties).
  std::vector<Scored> best(ranked.size());
  std::size_t right = 0;
  for (const Scored& s : ranked) right += !s.wrong;
  for (std::size_t i = 0; i < best.size(); ++i)
    best[i] = {-static_cast<double>(i), i >= right};
  out.e_aurc = out.aurc - area(best);
  return out;
}

}  // namespace abmll::eval
