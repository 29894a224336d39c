// Host entry points of the fused noisy output of the `weight` family's local reparameterisation (see
// src/meta/noisy_output_fused.h) and of the counter-based noise it draws on a GPU (src/meta/counter_noise.h),
// callable from code built without nvcc. src/meta/noisy_output_fused.cpp checks tensors and calls these; the entry
// arithmetic is src/meta/noisy_output_entry.h.
//
// Tensors are [B, T, X] with a contiguous last dimension: row (b, t) starts at data + b * batch_stride +
// t * time_stride (in elements). Rows are processed one thread block each.
#pragma once

#include <cstdint>

#include "activation_dtype.h"

namespace abmll::cuda {

template <class T>
struct NoisyRows {
  T* data = nullptr;
  std::int64_t batch_stride = 0, time_stride = 0;
};

struct NoisyOutputShape {
  std::int64_t batch = 0, time = 0, out = 0;  // B, T, O
};

// The noise: the rows of a float32 [B, T, O] tensor, or, where `sequence_keys` (a host array of B keys) is set,
// drawn inside the kernels from each sequence's key (counter_noise.h) and never stored.
struct NoisyOutputNoise {
  NoisyRows<const float> rows;
  const std::uint64_t* sequence_keys = nullptr;
};

// out[b, t, :] = mean + sqrt(max(v, bound[b, t])) * noise, rounded once to `dtype`; `out` contiguous [B, T, O].
// Throws std::runtime_error for a bad shape or a failed launch.
void noisy_output_forward(const NoisyOutputShape& shape, NoisyRows<const float> mean, NoisyRows<const float> v,
                          NoisyRows<const float> bound, const NoisyOutputNoise& noise, ActivationDtype dtype,
                          void* out, void* stream);

// From the output's gradient g (in `dtype`): g_v [B, T, O] and g_bound [B, T] (each row's sum of its entries' shares),
// both contiguous float32, and, where g_mean is not null, g as float32 into g_mean (contiguous [B, T, O]).
void noisy_output_backward(const NoisyOutputShape& shape, NoisyRows<const void> g, ActivationDtype dtype,
                           NoisyRows<const float> v, NoisyRows<const float> bound, const NoisyOutputNoise& noise,
                           float* g_mean, float* g_v, float* g_bound, void* stream);

// The counter-based noise of B sequences with these keys (a host array), into contiguous float32 [B, T, O].
void counter_noise_fill(const NoisyOutputShape& shape, const std::uint64_t* sequence_keys, float* out, void* stream);

}  // namespace abmll::cuda
