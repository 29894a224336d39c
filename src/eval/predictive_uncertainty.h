// How uncertain a query's posterior predictive is, and how much of that is the posterior's own (epistemic): with
// p_g = softmax(option log-likelihoods under posterior draw g) and p = mean_g p_g,
//   entropy             H[p]                      total predictive uncertainty, in nats
//   expected_entropy    mean_g H[p_g]             what each draw is unsure of (aleatoric)
//   mutual_information  H[p] - mean_g H[p_g]      the draws' disagreement (epistemic; BALD's score), >= 0,
//                                                 equal to mean_g KL(p_g || p); 0 with one draw
#pragma once

#include <vector>

namespace abmll::eval {

struct PredictiveUncertainty {
  double entropy = 0;
  double expected_entropy = 0;
  double mutual_information = 0;
};

// The entropy of a distribution over options, in nats (0 log 0 = 0).
double predictive_entropy(const std::vector<double>& probs);

// `loglik[g][k]`: option k's log-likelihood under draw g (at least one draw; every draw with the same options).
PredictiveUncertainty predictive_uncertainty(const std::vector<std::vector<double>>& loglik);

}  // namespace abmll::eval
