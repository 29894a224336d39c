// Quantiles of a sample, as the bootstrap intervals of `evaluate` and `report --baseline` take them.
#pragma once

#include <vector>

namespace abmll::eval {

// The q-quantile (0 <= q <= 1) of `values` with linear interpolation (numpy's default); values non-empty and free
// of NaN (which has no place in an order).
double quantile(std::vector<double> values, double q);

}  // namespace abmll::eval
