// Reliability diagram as a self-contained SVG (no scripts, fonts or external references): one bar per confidence
// bin with the bin's accuracy, the bin's mean confidence marked on it, the diagonal of perfect calibration, and
// the number of queries in each bin.
#pragma once

#include <string>

#include "eval/calibration.h"

namespace abmll::eval {

// `title` is shown above the plot (escaped).
std::string reliability_svg(const CalibrationMetrics& metrics, const std::string& title);

}  // namespace abmll::eval
