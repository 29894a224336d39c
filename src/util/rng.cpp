#include "util/rng.h"

#include <cassert>

#include "util/error.h"

namespace abmll {

namespace {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ULL;  // SplitMix64's increment

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

Rng::Rng(std::uint64_t seed) {
  // SplitMix64 never yields four zero words in a row, so the state is always valid.
  std::uint64_t x = seed;
  for (auto& word : s_) {
    x += kGolden;
    word = splitmix64_mix(x);
  }
}

Rng Rng::stream(std::uint64_t seed, std::string_view name) {
  return Rng(splitmix64_mix(seed) ^ fnv1a64(name));
}

Rng Rng::from_state(const State& state) {
  if (state[0] == 0 && state[1] == 0 && state[2] == 0 && state[3] == 0)
    throw InputError("random generator state is all zeros (not a saved xoshiro256** state)");
  Rng rng;
  rng.s_ = state;
  return rng;
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Rng::below(std::uint64_t n) {
  assert(n >= 1);
  // 2^64 mod n, computed in 64 bits: (2^64 - n) mod n.
  const std::uint64_t threshold = (0 - n) % n;
  for (;;) {
    std::uint64_t x = next_u64();
    if (x >= threshold) return x % n;
  }
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

std::vector<std::size_t> Rng::sample(std::size_t n, std::size_t k) {
  assert(k <= n);
  std::vector<std::size_t> items(n);
  for (std::size_t i = 0; i < n; ++i) items[i] = i;
  for (std::size_t i = 0; i < k; ++i) {
    std::size_t j = i + static_cast<std::size_t>(below(n - i));
    std::swap(items[i], items[j]);
  }
  items.resize(k);
  return items;
}

}  // namespace abmll
