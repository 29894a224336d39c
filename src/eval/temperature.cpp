#include "eval/temperature.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace abmll::eval {
namespace {

// NLL of one query at inverse temperature a, and its derivative in a: E_p[z] - z_label. Everything is taken
// relative to the largest logit, so that logits near the limits of double (whose products with a, or whose sums,
// would overflow to inf and give inf - inf) stay finite: only differences from the largest logit are scaled.
struct NllAndSlope {
  double nll, slope;
};

NllAndSlope query_nll(const std::vector<double>& z, std::int64_t label, double a) {
  double max = -std::numeric_limits<double>::infinity();
  for (double v : z) max = std::max(max, v);
  double sum = 0, weighted = 0;  // weighted: sum of e * (v - max), each term finite where e > 0
  for (double v : z) {
    if (std::isinf(v)) continue;  // -inf: probability 0 at every temperature
    const double e = std::exp(a * (v - max));
    if (e == 0) continue;
    sum += e;
    weighted += e * (v - max);
  }
  return {std::log(sum) - a * (z[label] - max), weighted / sum + (max - z[label])};
}

}  // namespace

std::vector<double> softmax(const std::vector<double>& logits, double temperature) {
  double max = -std::numeric_limits<double>::infinity();
  for (double v : logits) max = std::max(max, v);
  std::vector<double> p(logits.size());
  double sum = 0;
  for (std::size_t k = 0; k < logits.size(); ++k) {
    p[k] = std::isinf(logits[k]) ? 0.0 : std::exp((logits[k] - max) / temperature);
    sum += p[k];
  }
  for (double& v : p) v /= sum;
  return p;
}

double mean_nll(const std::vector<std::vector<double>>& logits, const std::vector<std::int64_t>& labels,
                double temperature) {
  double total = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) total += query_nll(logits[i], labels[i], 1.0 / temperature).nll;
  return total / logits.size();
}

TemperatureFit fit_temperature(const std::vector<std::vector<double>>& logits,
                               const std::vector<std::int64_t>& labels) {
  auto slope = [&](double a) {
    double total = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) total += query_nll(logits[i], labels[i], a).slope;
    return total / logits.size();
  };
  // Bisection on log a over [1e-4, 1e4]; the slope is non-decreasing in a (convexity). At a bound, the bound itself
  // (exp(log(1e4)) is 1e4 within an ulp only).
  constexpr double kMinA = 1e-4, kMaxA = 1e4;
  double lo = std::log(kMinA), hi = std::log(kMaxA);
  TemperatureFit fit;
  double a;
  if (slope(kMaxA) <= 0) {
    a = kMaxA, fit.at_bound = true;
  } else if (slope(kMinA) >= 0) {
    a = kMinA, fit.at_bound = true;
  } else {
    for (int i = 0; i < 80; ++i) {
      const double mid = 0.5 * (lo + hi);
      (slope(std::exp(mid)) > 0 ? hi : lo) = mid;
    }
    a = std::exp(0.5 * (lo + hi));
  }
  fit.temperature = 1.0 / a;
  fit.nll_before = mean_nll(logits, labels, 1.0);
  fit.nll_after = mean_nll(logits, labels, fit.temperature);
  return fit;
}

}  // namespace abmll::eval
