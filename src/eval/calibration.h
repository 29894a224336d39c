// Accuracy and calibration of categorical predictions: ECE, MCE, NLL, Brier and the reliability bins.
// Conventions follow torchmetrics' multiclass calibration error (and Guo et al. 2017): confidence = the largest
// probability, prediction = the first option with that probability (as torch.max picks it), `bins` equal-width
// bins with edges k / bins, a confidence on an inner edge belongs to the bin above it, and a confidence of exactly
// 1.0 falls in an extra last bin [1, 1] of its own (torchmetrics' bucketize-based binning does the same). ECE is the
// count-weighted L1 gap between accuracy and mean confidence; MCE the largest gap over bins (empty bins: gap 0).
// Bins are assigned as torchmetrics assigns them, from the confidence rounded to float32 against float32 edges
// k / bins (torchmetrics casts confidences with .float()), so that a confidence of 0.99999999 counts in the [1, 1]
// bin in both and published ECEs computed with torchmetrics are comparable. torchmetrics builds its edges with
// torch.linspace, which can differ from k / bins by one float32 ulp for bin counts that are not powers of two: only
// a confidence within that ulp of such an edge can be binned differently. Accuracies, confidences and the metrics
// themselves are computed in float64.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <vector>

namespace abmll::eval {

// One query: a probability per answer option (any number of options >= 1) and the index of the right one.
struct CategoricalPrediction {
  std::vector<double> probs;
  std::int64_t label = 0;
};

struct CalibrationBin {
  double lo = 0, hi = 0;     // confidence range [lo, hi)  (the extra last bin is [1, 1])
  std::int64_t count = 0;
  double accuracy = 0;       // fraction correct in the bin (0 when empty)
  double confidence = 0;     // mean confidence in the bin (0 when empty)
};

struct CalibrationMetrics {
  std::int64_t n = 0;
  double accuracy = 0;
  double ece = 0;
  double mce = 0;
  double nll = 0;    // mean -log p(label); +inf if some label has probability 0
  double brier = 0;  // mean over queries of sum over options (p_k - [k == label])^2
  std::vector<CalibrationBin> bins;  // `bins` + 1 entries, the last being [1, 1]
};

// Requires at least one prediction, bins >= 1, labels within their option lists (callers validate input).
CalibrationMetrics calibration_metrics(const std::vector<CategoricalPrediction>& predictions, int bins);

// How well confidence tells right predictions from wrong ones: the area under the ROC curve of the confidence (the
// largest probability; the prediction as calibration_metrics picks it) as a score for being right, that is the
// probability that a random right prediction is more confident than a random wrong one, ties counting half
// (Mann-Whitney U). 0.5 is chance. Unlike ECE it cannot be met by a constant confidence equal to the accuracy. NaN
// when every prediction is right, or every one wrong. Kept apart from calibration_metrics, which bootstrap
// resampling calls a thousand times, because it sorts.
double confidence_auroc(const std::vector<CategoricalPrediction>& predictions);

// A metric for JSON: the number, or null where it is NaN or infinite (JSON has neither).
nlohmann::json metric_json(double value);

// The accuracy, ECE, MCE and bins of the union of several prediction sets from the bins of each (calibration_metrics'
// bins, all with the same edges): counts add up, bin accuracies and confidences average weighted by count. NLL and
// Brier cannot be had from bins: NaN. Requires at least one set, sets of equal bin counts, and one prediction.
CalibrationMetrics pool_bins(const std::vector<std::vector<CalibrationBin>>& sets);

// {"n", "accuracy", "ece", "mce", "nll", "brier", "bins": [{"lo", "hi", "count", "accuracy", "confidence"}]}
nlohmann::json to_json(const CalibrationMetrics& metrics);

// Bin edges k / bins, k = 0..bins, in float32 (see above).
std::vector<float> bin_edges(int bins);

}  // namespace abmll::eval
