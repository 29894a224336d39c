// Reliability diagrams as self-contained SVG (no scripts, fonts or external references). One prediction set's: one
// bar per confidence bin with the bin's accuracy, the bin's mean confidence marked on it, the diagonal of perfect
// calibration, and the number of queries in each bin.
#pragma once

#include <string>
#include <vector>

#include "eval/calibration.h"

namespace abmll::eval {

// `title` is shown above the plot (escaped).
std::string reliability_svg(const CalibrationMetrics& metrics, const std::string& title);

// Several reliability diagrams in one plot, to compare them: per curve, a line through the non-empty bins' (mean
// confidence, accuracy) points, each point's area proportional to the bin's share of the curve's queries, and a
// legend entry with the curve's ECE, accuracy and n (from its metrics).
struct ReliabilityCurve {
  std::string label;
  CalibrationMetrics metrics;
};
std::string reliability_comparison_svg(const std::vector<ReliabilityCurve>& curves, const std::string& title);

}  // namespace abmll::eval
