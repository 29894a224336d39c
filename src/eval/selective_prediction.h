// Selective prediction: answering only the queries the model is most confident about, and abstaining on the rest.
// Ranked by confidence (the largest probability; the prediction as calibration_metrics picks it), the k most
// confident queries have a selective risk, their error rate; the risk-coverage curve runs over coverage k / n, and
// its area (AURC, Geifman & El-Yaniv 2017) is the mean risk over k = 1..n: lower is better. Where confidences tie,
// the risk is its expected value over the tied queries' orders. E-AURC subtracts the area of the best ranking of
// the same predictions (every right one before every wrong one), so that it measures the ranking alone, apart from
// the accuracy (0 is perfect).
#pragma once

#include <vector>

#include "eval/calibration.h"

namespace abmll::eval {

struct SelectiveRisk {
  double aurc = 0;
  double e_aurc = 0;
};

// Requires at least one prediction.
SelectiveRisk selective_risk(const std::vector<CategoricalPrediction>& predictions);

}  // namespace abmll::eval
