// The noisy output of the `weight` family's local reparameterisation, y = mean + sqrt(max(v, bound)) * noise (see
// reparam_ops.h), as one pass over its [B, T, O] tensors forward and one backward: a loop on the CPU, a kernel on a
// GPU (cuda/noisy_output.cu), the same entry arithmetic (noisy_output_entry.h). The chain of ATen ops it replaces
// (reparam_ops.cpp, the reference) makes about six passes forward, each reading and writing float32 [B, T, O], and
// about twenty backward. The output is rounded to the activations' dtype in the same pass. The noise is a tensor, or
// drawn inside the pass from each sequence's key (counter_noise.h: what the `weight` family does on a GPU) and never
// stored. float32 inputs only; not differentiable (a backward that builds a graph, for second-order
// meta-gradients, takes the reference).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace abmll::meta {

// A noisy output's noise: a float32 [B, T, O] tensor whose last dimension is contiguous (other strides are free: it
// is usually a view), or, where `sequence_keys` is not empty, sequence b's key for counter-based noise (B keys).
struct OutputNoise {
  at::Tensor tensor;
  std::vector<std::uint64_t> sequence_keys;
};

// The counter-based noise of sequences with these keys, [B = keys.size(), time, out] float32 on `device` (the
// tensor the fused pass draws from the keys without storing it).
at::Tensor counter_noise_tensor(const std::vector<std::uint64_t>& sequence_keys, std::int64_t time, std::int64_t out,
                                const at::Device& device);

// Whether the fused code takes these: float32 mean and v [B, T, O] and bound [B, T, 1] on one device (the CPU, or a
// GPU when cuda/ is built), each with a contiguous last dimension, noise as above, and an output dtype of float32,
// bfloat16 or float16.
bool noisy_output_fused_applies(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                                const OutputNoise& noise, at::ScalarType out);

// mean + sqrt(max(v, bound)) * noise in float32, rounded once to `out`: a contiguous [B, T, O] tensor.
at::Tensor noisy_output_fused_forward(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                                      const OutputNoise& noise, at::ScalarType out);

struct NoisyOutputGradients {
  at::Tensor mean;   // [B, T, O] float32: g itself, or its float32 copy when g is in a lower precision
  at::Tensor v;      // [B, T, O] float32
  at::Tensor bound;  // [B, T, 1] float32
};

// Gradients from the output's gradient g ([B, T, O], in the output's dtype) given the forward's inputs.
NoisyOutputGradients noisy_output_fused_backward(const at::Tensor& g, const at::Tensor& v, const at::Tensor& bound,
                                                 const OutputNoise& noise);

}  // namespace abmll::meta
