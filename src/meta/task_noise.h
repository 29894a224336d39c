// Monte Carlo noise, one stream per task. Each task of a meta-batch draws its reparameterisation noise from its own
// CPU generator, seeded from (run seed, outer step, the task's position in the step's meta-batch), so a task's noise
// does not depend on which other tasks share its forward, how many there are, or which rank runs it: N ranks with
// T/N tasks each draw exactly the noise one process with T tasks draws.
//
// Layout: a grouped posterior's sample() draws from task g's generator only what group g needs, so a task's
// generator sees the same sequence of draws (every sample() call of its inner steps, then its query) whatever G is:
//   factor  on the CPU: per site and in site order, A's noise then B's, each as one randn([S, R, I]) (resp.
//           [S, O, R]); on a GPU: one draw_seed(), which seeds one device draw of all of the group's factors
//           (factor_gaussian.h);
//   weight  one draw_seed(), the seed of the task's per-token noise (weight_lora.h).
// Device noise comes from the device's own generator (Philox on CUDA), so the same seed gives the same numbers run
// after run on one machine, but not the CPU's numbers: a run is reproducible on its device type.
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

// A seed for noise drawn elsewhere (on a device, or in chunks): one int64 in [0, 2^62) from `generator`, as
// torch.randint(2**62, (1,), generator=g) draws it in Python.
std::uint64_t draw_seed(const at::Generator& generator);

// A fresh generator for `device` seeded with `seed`: mt19937 on the CPU (as torch.Generator().manual_seed), a copy of
// the device's Philox otherwise (so that the device's global generator is left alone).
at::Generator seeded_generator(std::uint64_t seed, const at::Device& device);

}  // namespace abmll::meta
