// Unit tests of the RNG (src/util/rng.h): known answers from the published algorithms (SplitMix64's reference
// sequence for seed 1234567, xoshiro256** from state {1, 2, 3, 4}, FNV-1a of "a") and from an independent Python
// transcription of the same definitions (stream derivation, bounded draws, shuffle, sample), then properties.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "util/error.h"
#include "util/rng.h"

using abmll::Rng;
using U = std::vector<std::uint64_t>;

namespace {
U draws(Rng& rng, int n) {
  U out;
  for (int i = 0; i < n; ++i) out.push_back(rng.next_u64());
  return out;
}
}  // namespace

TEST_CASE("rng: SplitMix64 seeding matches the reference sequence", "[rng]") {
  // SplitMix64 from 1234567 (the sequence Java's SplittableRandom and Vigna's reference code give).
  Rng rng(1234567);
  CHECK(rng.state() == Rng::State{6457827717110365317ULL, 3203168211198807973ULL, 9817491932198370423ULL,
                                  4593380528125082431ULL});
  Rng zero(0);
  CHECK(zero.state() == Rng::State{16294208416658607535ULL, 7960286522194355700ULL, 487617019471545679ULL,
                                   17909611376780542444ULL});
}

TEST_CASE("rng: xoshiro256** known answers", "[rng]") {
  Rng rng = Rng::from_state({1, 2, 3, 4});
  CHECK(draws(rng, 6) == U{11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL, 1216172134540287360ULL,
                           607988272756665600ULL});
  Rng seeded(0);
  CHECK(draws(seeded, 4) == U{11091344671253066420ULL, 13793997310169335082ULL, 1900383378846508768ULL,
                              7684712102626143532ULL});
}

TEST_CASE("rng: named streams", "[rng]") {
  CHECK(abmll::fnv1a64("") == 14695981039346656037ULL);
  CHECK(abmll::fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  Rng episodes = Rng::stream(42, "episodes");
  CHECK(draws(episodes, 3) == U{9672531887609256683ULL, 9844699863302214222ULL, 17740357082646103016ULL});
  Rng empty = Rng::stream(0, "");
  CHECK(empty.next_u64() == 2393714812739481704ULL);

  // Same (seed, name): same stream; another name or seed: another.
  Rng a = Rng::stream(42, "episodes"), b = Rng::stream(42, "episodes");
  Rng c = Rng::stream(42, "noise"), d = Rng::stream(43, "episodes");
  U da = draws(a, 8);
  CHECK(da == draws(b, 8));
  CHECK(da != draws(c, 8));
  CHECK(da != draws(d, 8));
}

TEST_CASE("rng: bounded integers, uniform doubles, shuffle and sample: known answers", "[rng]") {
  Rng rng = Rng::stream(7, "test");
  std::vector<std::uint64_t> small;
  for (int i = 0; i < 10; ++i) small.push_back(rng.below(10));
  CHECK(small == U{1, 2, 9, 3, 4, 5, 3, 4, 0, 2});
  // A bound above 2^63: half the raw draws are rejected, the rest reduced.
  const std::uint64_t big = (1ULL << 63) + 5;
  CHECK(U{rng.below(big), rng.below(big), rng.below(big)} ==
        U{7940405749458977805ULL, 6155209248023588401ULL, 3708094752325515620ULL});

  Rng shuffler = Rng::stream(7, "shuffle");
  std::vector<int> items{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  shuffler.shuffle(items);
  CHECK(items == std::vector<int>{8, 0, 7, 1, 4, 9, 2, 5, 3, 6});

  Rng sampler = Rng::stream(7, "sample");
  CHECK(sampler.sample(10, 4) == std::vector<std::size_t>{2, 4, 3, 6});

  Rng u(42);
  CHECK(u.uniform() == 0.08386297105988216);
  CHECK(u.uniform() == 0.3789802506626686);
}

TEST_CASE("rng: below covers its range evenly and never reaches the bound", "[rng]") {
  Rng rng(99);
  CHECK(rng.below(1) == 0);
  std::map<std::uint64_t, int> counts;
  const int n = 70000;
  for (int i = 0; i < n; ++i) counts[rng.below(7)]++;
  REQUIRE(counts.size() == 7);
  CHECK(counts.rbegin()->first == 6);
  for (const auto& [value, count] : counts) CHECK(std::abs(count - n / 7) < 400);  // ~4.5 sigma
  for (int i = 0; i < 1000; ++i) {
    double x = rng.uniform();
    CHECK((x >= 0.0 && x < 1.0));
  }
}

TEST_CASE("rng: sample draws distinct indices; shuffle permutes", "[rng]") {
  Rng rng(5);
  auto s = rng.sample(20, 20);
  CHECK(std::set<std::size_t>(s.begin(), s.end()).size() == 20);
  CHECK(rng.sample(5, 0).empty());
  auto part = rng.sample(1000, 10);
  CHECK(std::set<std::size_t>(part.begin(), part.end()).size() == 10);
  CHECK(*std::max_element(part.begin(), part.end()) < 1000);
  std::vector<int> v(50);
  for (int i = 0; i < 50; ++i) v[i] = i;
  auto w = v;
  rng.shuffle(w);
  CHECK(w != v);
  std::sort(w.begin(), w.end());
  CHECK(w == v);
}

TEST_CASE("rng: state save and restore resumes exactly", "[rng]") {
  Rng rng = Rng::stream(3, "noise");
  draws(rng, 5);
  Rng::State saved = rng.state();
  U after = draws(rng, 10);
  Rng resumed = Rng::from_state(saved);
  CHECK(draws(resumed, 10) == after);
  CHECK_THROWS_AS(Rng::from_state({0, 0, 0, 0}), abmll::InputError);
}
