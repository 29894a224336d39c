// Unit tests of eval/predictive_uncertainty.h: the entropies against direct formulas, and the mutual information
// against its other form, the mean KL divergence of each draw's distribution from their mean.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "eval/predictive_uncertainty.h"

using abmll::eval::predictive_uncertainty;

namespace {

std::vector<double> softmax(const std::vector<double>& x) {
  double z = 0;
  for (double v : x) z += std::exp(v);
  std::vector<double> p;
  for (double v : x) p.push_back(std::exp(v) / z);
  return p;
}

}  // namespace

TEST_CASE("predictive uncertainty: entropy, expected entropy, mutual information = mean KL to the mean", "[eval]") {
  const std::vector<std::vector<double>> loglik = {{-1.0, -2.5, -0.3}, {-4.0, -0.2, -1.1}, {-0.7, -0.9, -3.0}};
  std::vector<std::vector<double>> probs;
  std::vector<double> mean(3, 0.0);
  for (const auto& ll : loglik) {
    probs.push_back(softmax(ll));
    for (int k = 0; k < 3; ++k) mean[k] += probs.back()[k] / 3;
  }
  double entropy = 0, expected = 0, mean_kl = 0;
  for (int k = 0; k < 3; ++k) entropy -= mean[k] * std::log(mean[k]);
  for (const auto& p : probs)
    for (int k = 0; k < 3; ++k) {
      expected -= p[k] * std::log(p[k]) / 3;
      mean_kl += p[k] * std::log(p[k] / mean[k]) / 3;
    }
  const auto u = predictive_uncertainty(loglik);
  CHECK(u.entropy == Approx(entropy).epsilon(1e-12));
  CHECK(u.expected_entropy == Approx(expected).epsilon(1e-12));
  CHECK(u.mutual_information == Approx(mean_kl).epsilon(1e-12));
  CHECK(u.mutual_information > 0.1);  // these draws disagree
}

TEST_CASE("predictive uncertainty: one draw, or draws that agree, have no mutual information", "[eval]") {
  const auto one = predictive_uncertainty({{-0.1, -2.0}});
  CHECK(one.mutual_information == 0);
  CHECK(one.entropy == Approx(one.expected_entropy));
  const auto agree = predictive_uncertainty({{-0.1, -2.0}, {-1.1, -3.0}});  // the same softmax
  CHECK(agree.mutual_information == Approx(0).margin(1e-15));
  // A certain prediction: log-likelihoods far apart give probabilities 1 and 0 (0 log 0 = 0).
  CHECK(predictive_uncertainty({{0.0, -1000.0}}).entropy == 0);
}
