#include "meta/task_noise.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/ops/randint.h>
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

std::uint64_t draw_seed(const at::Generator& generator) {
  return static_cast<std::uint64_t>(
      at::randint(int64_t{1} << 62, {1}, generator, at::TensorOptions().dtype(at::kLong)).item<int64_t>());
}

at::Generator seeded_generator(std::uint64_t seed, const at::Device& device) {
  if (device.is_cpu()) return at::detail::createCPUGenerator(seed);
  at::Generator gen = at::globalContext().defaultGenerator(device).clone();
  gen.set_current_seed(seed);
  return gen;
}

}  // namespace abmll::meta
