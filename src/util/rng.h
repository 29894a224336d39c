// The one pseudo-random number generator of abmll: xoshiro256** (Blackman & Vigna), its 256-bit state filled by
// SplitMix64 from a 64-bit seed. Everything random in a run (task sampling, episode splits, noise seeds) draws from a
// named stream derived from the run's seed, Rng::stream(seed, "episodes"), so that adding draws to one stream never
// shifts another, and a checkpoint can store each stream's state (four uint64) and resume exactly.
//
// Portability: every output is defined by this file alone, bit for bit on every platform and standard library.
// That is why bounded integers and shuffles are implemented here rather than with std::uniform_int_distribution or
// std::shuffle, whose outputs differ between libstdc++, libc++ and MSVC.
//
// Not thread-safe: give each thread its own stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace abmll {

class Rng {
 public:
  using State = std::array<std::uint64_t, 4>;

  // The state SplitMix64 produces from `seed` (its first four outputs).
  explicit Rng(std::uint64_t seed);

  // The stream called `name` of the run seeded with `seed`: seeded with mix(seed) XOR fnv1a64(name), where mix is
  // SplitMix64's output function. Different names give unrelated streams; the same (seed, name) the same stream.
  static Rng stream(std::uint64_t seed, std::string_view name);

  // Resumes from a saved state(). Throws InputError for the all-zero state (not a valid xoshiro256** state).
  static Rng from_state(const State& state);
  const State& state() const { return s_; }

  // Next 64 random bits.
  std::uint64_t next_u64();

  // Uniform integer in [0, n), n >= 1, without modulo bias: raw draws below 2^64 mod n are rejected (at most half
  // of them, expected far fewer), the rest reduced modulo n.
  std::uint64_t below(std::uint64_t n);

  // Uniform double in [0, 1) from the top 53 bits of one draw.
  double uniform();

  // Fisher-Yates, from the last element down: element i swaps with below(i + 1).
  template <class T>
  void shuffle(std::vector<T>& items) {
    for (std::size_t i = items.size(); i > 1; --i) {
      std::size_t j = static_cast<std::size_t>(below(i));
      using std::swap;
      swap(items[i - 1], items[j]);
    }
  }

  // `k` distinct indices of [0, n), in random order (the first k of a partial Fisher-Yates shuffle of 0..n-1 run
  // from the front: position i swaps with i + below(n - i)). Requires k <= n.
  std::vector<std::size_t> sample(std::size_t n, std::size_t k);

 private:
  Rng() = default;
  State s_{};
};

// SplitMix64's output function (a bijective 64-bit mixer).
std::uint64_t splitmix64_mix(std::uint64_t z);
// FNV-1a, 64-bit, of the bytes of `text`.
std::uint64_t fnv1a64(std::string_view text);

}  // namespace abmll
