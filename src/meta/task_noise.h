// Monte Carlo noise, one stream per task. Each task of a meta-batch draws its reparameterisation noise from its own
// CPU generator, seeded from (run seed, outer step, the task's position in the step's meta-batch), so a task's noise
// does not depend on which other tasks share its forward, how many there are, or which rank runs it: N ranks with
// T/N tasks each draw exactly the noise one process with T tasks draws.
//
// Layout: a grouped posterior's sample() draws from task g's generator only what group g needs, so a task's
// generator sees the same sequence of draws (every sample() call of its inner steps, then its query) whatever G is:
//   factor  per site and in site order, A's noise then B's, each as one randn([S, R, I]) (resp. [S, O, R]);
//   weight  one int64 in [0, 2^62) (randint), the seed of the task's per-token noise (weight_lora.h).
#pragma once

#include <ATen/core/Generator.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace abmll::meta {

using TaskNoise = std::vector<at::Generator>;  // [G] one CPU generator per task (group), in group order

// The noise seed of meta-batch position `position` at outer step `step` (0-based): the first draw of the named
// stream "noise/<step>/<position>" of the run seed.
std::uint64_t task_noise_seed(std::uint64_t run_seed, std::int64_t step, std::int64_t position);

// Generators for positions [first, first + count) of step `step`.
TaskNoise step_noise(std::uint64_t run_seed, std::int64_t step, std::int64_t first, std::int64_t count);

// One generator per seed.
TaskNoise noise_from_seeds(const std::vector<std::uint64_t>& seeds);

}  // namespace abmll::meta
