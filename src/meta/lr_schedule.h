// The outer learning rate over steps: linear warm-up from 0 to the peak, then cosine or linear decay to 0 at the
// last step, or constant. Step numbers count completed updates: the update that makes step s uses lr(s), s >= 0.
#pragma once

#include <cstdint>

#include "config/experiment_config.h"

namespace abmll::meta {

double learning_rate(std::int64_t step, std::int64_t total_steps, std::int64_t warmup_steps, double peak,
                     LrSchedule schedule);

}  // namespace abmll::meta
