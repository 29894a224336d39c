// Quantiles (see quantile.h).
#include "eval/quantile.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "util/error.h"

namespace abmll::eval {

double quantile(std::vector<double> values, double q) {
  if (values.empty()) throw Error("quantile of no values");
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto i = static_cast<std::size_t>(std::floor(pos));
  if (i + 1 >= values.size()) return values.back();
  const double frac = pos - static_cast<double>(i);
  return values[i] + frac * (values[i + 1] - values[i]);
}

}  // namespace abmll::eval
