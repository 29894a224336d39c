// One entry (o, i) of the weight-space KL of ABMLL.md 2(b) from its mean and scale pre-activations, shared by the
// fused CPU loop (weight_kl_cpu.cpp) and the CUDA kernels (cuda/weight_kl.cu), so that the CPU tests check the
// arithmetic the GPU runs. The tiled ATen code in weight_gaussian.cpp is the reference of both.
//
// For q and p with means M and pre-activations Z of the scale: S = Z + c (linear) or softplus(Z) + c,
// V = max(S^2, c^2), and
//   KL = 1/2 (u - log1p(u)) + (Mq - Mp)^2 / (2 Vp),   u = Vq / Vp - 1 (computed without cancellation).
#pragma once

#include <cmath>

#include "util/host_device.h"

namespace abmll::weight_kl {

struct EntryForm {
  float floor = 0;          // c
  float floor_squared = 0;  // c^2 rounded once from double, as ATen's comparisons with the double c^2 round it
  bool softplus = false;    // scale form
};

struct EntryScale {
  float s, v;  // S and V = max(S^2, c^2)
};

ABMLL_HOST_DEVICE inline EntryScale scale_of(float z, const EntryForm& form) {
  // softplus as ATen computes it (threshold 20).
  const float s = (form.softplus ? (z > 20.f ? z : log1pf(expf(z))) : z) + form.floor;
  return {s, fmaxf(s * s, form.floor_squared)};
}

// dS/dZ.
ABMLL_HOST_DEVICE inline float scale_slope(float z, const EntryForm& form) {
  return form.softplus ? 1.f / (1.f + expf(-z)) : 1.f;
}

// u = Vq / Vp - 1 without cancellation where neither scale is floored.
ABMLL_HOST_DEVICE inline float ratio_minus_one(const EntryScale& q, const EntryScale& p, float c2) {
  const bool unfloored = q.s * q.s > c2 && p.s * p.s > c2;
  return (unfloored ? (q.s - p.s) * (q.s + p.s) : q.v - p.v) / p.v;
}

// 1/2 (u - log1p(u)): its series where |u| < 1e-2 (as src/meta/gaussian.cpp's kl_scale_term).
ABMLL_HOST_DEVICE inline float scale_term(float u) {
  if (fabsf(u) < 1e-2f)
    return 0.5f * u * u * (0.5f + u * (-1.f / 3 + u * (0.25f + u * (-0.2f + u * (1.f / 6 - u / 7)))));
  return 0.5f * (u - log1pf(u));
}

struct EntryGradients {
  float mq, zq, zp;  // g dKL/dMq (dKL/dMp is its negative), g dKL/dZq, g dKL/dZp
};

// One entry's KL in *kl, how many of S_q, S_p are below the floor (0, 1 or 2) in *floored, and g times its
// gradients. entry_kl below is this with the gradients dropped (inlined, the compilers drop their arithmetic), so the
// value is the same number whether or not the gradients come with it.
ABMLL_HOST_DEVICE inline EntryGradients entry_kl_and_gradients(float mq, float zq, float mp, float zp, float g,
                                                               const EntryForm& form, float* kl, int* floored) {
  const float c2 = form.floor_squared;
  const EntryScale q = scale_of(zq, form), p = scale_of(zp, form);
  const float d = mq - mp;
  const float u = ratio_minus_one(q, p, c2);
  *floored = (q.s * q.s < c2 ? 1 : 0) + (p.s * p.s < c2 ? 1 : 0);
  *kl = scale_term(u) + d * d / (2 * p.v);
  // dKL/dVq = u / (2 Vq), dKL/dVp = -(u + D^2 / Vp) / (2 Vp); dV/dZ = 2 S dS/dZ above the floor, 0 on it.
  const float g_vq = g * 0.5f * u / q.v;
  const float g_vp = -g * 0.5f * (u + d * d / p.v) / p.v;
  return {g * d / p.v, q.s * q.s > c2 ? g_vq * 2 * q.s * scale_slope(zq, form) : 0.f,
          p.s * p.s > c2 ? g_vp * 2 * p.s * scale_slope(zp, form) : 0.f};
}

// KL of one entry; *floored gets how many of S_q, S_p are below the floor (0, 1 or 2).
ABMLL_HOST_DEVICE inline float entry_kl(float mq, float zq, float mp, float zp, const EntryForm& form, int* floored) {
  float kl = 0;
  (void)entry_kl_and_gradients(mq, zq, mp, zp, 0.f, form, &kl, floored);
  return kl;
}

}  // namespace abmll::weight_kl
