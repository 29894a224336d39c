#include "meta/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace abmll::meta {

double learning_rate(std::int64_t step, std::int64_t total_steps, std::int64_t warmup_steps, double peak,
                     LrSchedule schedule) {
  // Warm-up: step s of w uses peak * (s + 1) / w, so the first update is not a no-op and step w - 1 is at the peak.
  if (step < warmup_steps) return peak * double(step + 1) / double(warmup_steps);
  if (schedule == LrSchedule::constant) return peak;
  const std::int64_t decay_steps = std::max<std::int64_t>(1, total_steps - warmup_steps);
  const double progress = std::clamp(double(step - warmup_steps) / double(decay_steps), 0.0, 1.0);
  if (schedule == LrSchedule::linear) return peak * (1.0 - progress);
  return peak * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace abmll::meta
