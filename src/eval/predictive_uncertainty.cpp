#include "eval/predictive_uncertainty.h"

#include <algorithm>
#include <cmath>

#include "eval/temperature.h"
#include "util/error.h"

namespace abmll::eval {

double predictive_entropy(const std::vector<double>& probs) {
  double h = 0;
  for (double p : probs)
    if (p > 0) h -= p * std::log(p);
  return h;
}

PredictiveUncertainty predictive_uncertainty(const std::vector<std::vector<double>>& loglik) {
  if (loglik.empty()) throw Error("predictive_uncertainty: no draws");
  std::vector<double> mean(loglik.front().size(), 0.0);
  PredictiveUncertainty u;
  const double weight = 1.0 / static_cast<double>(loglik.size());
  for (const auto& ll : loglik) {
    if (ll.size() != mean.size()) throw Error("predictive_uncertainty: draws with different numbers of options");
    const std::vector<double> probs = softmax(ll);
    for (std::size_t k = 0; k < probs.size(); ++k) mean[k] += weight * probs[k];
    u.expected_entropy += weight * predictive_entropy(probs);
  }
  u.entropy = predictive_entropy(mean);
  // Rounding can leave a hair below zero where the draws agree.
  u.mutual_information = std::max(0.0, u.entropy - u.expected_entropy);
  return u;
}

}  // namespace abmll::eval
