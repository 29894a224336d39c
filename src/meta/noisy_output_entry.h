// One entry of the local reparameterisation's noisy output, y = mean + sqrt(max(v, bound)) * noise, and its first
// derivatives, shared by the fused CPU loop (noisy_output_fused.cpp) and the CUDA kernels (cuda/noisy_output.cu), so
// that the CPU tests check the arithmetic the GPU runs. The chain of ATen ops in reparam_ops.cpp is the reference of
// both, and these follow its order of operations.
#pragma once

#include <cmath>

#include "util/host_device.h"

namespace abmll::noisy_output {

// max(v, bound) as ATen's maximum: NaN when either is NaN (a non-finite variance must reach the loss, not be hidden
// by the bound).
ABMLL_HOST_DEVICE inline float clamped(float v, float bound) { return (v != v || v > bound) ? v : bound; }

ABMLL_HOST_DEVICE inline float value(float mean, float v, float bound, float noise) {
  return mean + sqrtf(clamped(v, bound)) * noise;
}

// d y / d v and this entry's share of d y / d bound, times the output's gradient g. Where v = bound, the gradient
// of the maximum is split half and half, as ATen's maximum does.
struct EntryGradient {
  float v, bound;
};

ABMLL_HOST_DEVICE inline EntryGradient gradient(float g, float v, float bound, float noise) {
  const float g_max = g * noise * 0.5f / sqrtf(clamped(v, bound));
  const float to_v = v > bound ? 1.f : (v == bound ? 0.5f : 0.f);
  const float g_v = g_max * to_v;
  return {g_v, g_max - g_v};
}

}  // namespace abmll::noisy_output
