// The risk-coverage areas of selective prediction (eval/selective_prediction.h) on hand-computed cases: a ranking
// with a wrong answer in the middle, ties counted in expectation over their orders, all right, all wrong, and the
// independence from the order predictions come in.
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "eval/selective_prediction.h"

namespace {

namespace eval = abmll::eval;

// A two-option prediction whose first option has probability p; right when the label is 0 and p > 0.5.
eval::CategoricalPrediction two(double p, bool right) { return {{p, 1 - p}, right == (p > 0.5) ? 0 : 1}; }

}  // namespace

TEST_CASE("selective risk: AURC and E-AURC by hand", "[eval]") {
  // Confidences 0.9 (right), 0.8 (wrong), 0.7 (right): risks 0, 1/2, 1/3 at coverage 1/3, 2/3, 1. The best ranking
  // of one wrong answer among three: 0, 0, 1/3.
  std::vector<eval::CategoricalPrediction> p = {two(0.9, true), two(0.8, false), two(0.7, true)};
  eval::SelectiveRisk r = eval::selective_risk(p);
  CHECK(r.aurc == Approx((0 + 0.5 + 1.0 / 3) / 3).margin(1e-15));
  CHECK(r.e_aurc == Approx((0 + 0.5 + 1.0 / 3) / 3 - (1.0 / 3) / 3).margin(1e-15));
  std::reverse(p.begin(), p.end());  // the order they come in does not matter
  CHECK(eval::selective_risk(p).aurc == Approx(r.aurc).margin(1e-15));

  // A tie of a right and a wrong answer: either may come first, so the expected risk is 1/2 at both coverages.
  r = eval::selective_risk({two(0.6, true), two(0.6, false)});
  CHECK(r.aurc == Approx(0.5).margin(1e-15));
  CHECK(r.e_aurc == Approx(0.5 - 0.25).margin(1e-15));

  // Everything right: no risk at any coverage; everything wrong: risk 1 throughout, which no ranking improves.
  r = eval::selective_risk({two(0.9, true), two(0.6, true)});
  CHECK(r.aurc == 0);
  CHECK(r.e_aurc == 0);
  r = eval::selective_risk({two(0.9, false), two(0.6, false)});
  CHECK(r.aurc == 1);
  CHECK(r.e_aurc == 0);
}
