#include "meta/task_noise.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "util/rng.h"

namespace abmll::meta {

std::uint64_t task_noise_seed(std::uint64_t run_seed, std::int64_t step, std::int64_t position) {
  return Rng::stream(run_seed, fmt::format("noise/{}/{}", step, position)).next_u64();
}

TaskNoise step_noise(std::uint64_t run_seed, std::int64_t step, std::int64_t first, std::int64_t count) {
  std::vector<std::uint64_t> seeds;
  for (std::int64_t p = first; p < first + count; ++p) seeds.push_back(task_noise_seed(run_seed, step, p));
  return noise_from_seeds(seeds);
}

TaskNoise noise_from_seeds(const std::vector<std::uint64_t>& seeds) {
  TaskNoise out;
  out.reserve(seeds.size());
  for (std::uint64_t s : seeds) out.push_back(at::make_generator<at::CPUGeneratorImpl>(s));
  return out;
}

}  // namespace abmll::meta
