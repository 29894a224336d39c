// Temperature scaling (Guo et al. 2017): one scalar T > 0 dividing every logit, fitted on validation data by
// minimising the negative log-likelihood. NLL is convex in a = 1/T (its second derivative is the mean variance
// of the logits under the scaled softmax), so the fit is a bisection on the sign of dNLL/da: exact and
// deterministic, without a general-purpose optimiser.
#pragma once

#include <cstdint>
#include <vector>

namespace abmll::eval {

struct TemperatureFit {
  double temperature = 1;
  double nll_before = 0;  // at T = 1
  double nll_after = 0;   // at the fitted T
  bool at_bound = false;  // the optimum lies outside [1e-4, 1e4] and T was clamped there
};

// `logits[i]`: one value per option of query i (entries of -inf are options with probability 0 at every T).
TemperatureFit fit_temperature(const std::vector<std::vector<double>>& logits, const std::vector<std::int64_t>& labels);

// softmax(logits / temperature), stable; -inf entries get probability 0.
std::vector<double> softmax(const std::vector<double>& logits, double temperature = 1.0);

// Mean NLL of the labels under softmax(logits / temperature).
double mean_nll(const std::vector<std::vector<double>>& logits, const std::vector<std::int64_t>& labels,
                double temperature);

}  // namespace abmll::eval
