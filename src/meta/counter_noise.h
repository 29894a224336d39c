// Standard normal noise from a counter-based generator, drawn where it is used rather than stored: a sequence with
// 64-bit key k has at position t and output unit o the element o mod 4 of normal4(k, o / 4, t). Any entry is thus a
// function of (k, t, o) alone, computed in any order by any thread, on the CPU or a GPU alike (this header is
// compiled by both), never of the tensor's shape: the `weight` family's GPU noise (weight_lora.h) is drawn inside
// the fused noisy-output kernels this way, forward and again in backward, instead of being drawn into [B, T, O]
// tensors, concatenated and read back.
//
// Bits: Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011, as
// the Random123 library defines it), counter (o / 4, t, 0, 0), key (k mod 2^32, k / 2^32). Normals: Box-Muller on
// the four words w0..w3, with u(w) = (floor(w / 2^8) + 1/2) / 2^24 in (0, 1):
//   z0, z1 = r cos(2 pi u(w1)), r sin(2 pi u(w1)),   r = sqrt(-2 log u(w0)),   and likewise z2, z3 from w2, w3;
// |z| <= 5.9. The transcendental functions are the platform's float ones (glibc on the CPU, CUDA's on a GPU), so
// the two agree to a few units in the last place, not bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "util/host_device.h"

namespace abmll::counter_noise {

struct Words {
  std::uint32_t w[4];
};

ABMLL_HOST_DEVICE inline Words philox4x32_10(Words ctr, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * ctr.w[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * ctr.w[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = Words{{hi1 ^ ctr.w[1] ^ k0, lo1, hi0 ^ ctr.w[3] ^ k1, lo0}};
  }
  return ctr;
}

struct Normals {
  float z[4];
};

ABMLL_HOST_DEVICE inline float unit_open(std::uint32_t w) {
  return (static_cast<float>(w >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

// Elements 4 quad .. 4 quad + 3 of position `position` of the sequence with key `key`.
ABMLL_HOST_DEVICE inline Normals normal4(std::uint64_t key, std::uint32_t quad, std::uint32_t position) {
  const Words w = philox4x32_10(Words{{quad, position, 0u, 0u}}, static_cast<std::uint32_t>(key),
                                static_cast<std::uint32_t>(key >> 32));
  constexpr float kTwoPi = 6.28318530717958647692f;
  Normals n;
  for (int pair = 0; pair < 2; ++pair) {
    const float r = sqrtf(-2.0f * logf(unit_open(w.w[2 * pair])));
    const float angle = kTwoPi * unit_open(w.w[2 * pair + 1]);
    n.z[2 * pair] = r * cosf(angle);
    n.z[2 * pair + 1] = r * sinf(angle);
  }
  return n;
}

}  // namespace abmll::counter_noise
