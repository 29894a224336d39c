// The noisy output of the `weight` family's local reparameterisation, y = mean + sqrt(max(v, bound)) * noise (see
// reparam_ops.h), as one pass over its [B, T, O] tensors forward and one backward: a loop on the CPU, a kernel on a
// GPU (cuda/noisy_output.cu), the same entry arithmetic (noisy_output_entry.h). The chain of ATen ops it replaces
// (reparam_ops.cpp, the reference) makes about six passes forward, each reading and writing float32 [B, T, O], and
// about twenty backward: at the 8B shape with 8192 tokens, some 6 GB of memory traffic per layer and pass. The output
// is rounded to the activations' dtype in the same pass. float32 inputs only; not differentiable (a backward that
// builds a graph, for second-order meta-gradients, takes the reference).
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::meta {

// Whether the fused code takes these: float32 mean, v, noise [B, T, O] and bound [B, T, 1] on one device (the CPU,
// or a GPU when cuda/ is built), each with a contiguous last dimension (other strides are free: the noise is
// usually a view), and an output dtype of float32, bfloat16 or float16.
bool noisy_output_fused_applies(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                                const at::Tensor& noise, at::ScalarType out);

// mean + sqrt(max(v, bound)) * noise in float32, rounded once to `out`: a contiguous [B, T, O] tensor.
at::Tensor noisy_output_fused_forward(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                                      const at::Tensor& noise, at::ScalarType out);

struct NoisyOutputGradients {
  at::Tensor mean;   // [B, T, O] float32: g itself, or its float32 copy when g is in a lower precision
  at::Tensor v;      // [B, T, O] float32
  at::Tensor bound;  // [B, T, 1] float32
};

// Gradients from the output's gradient g ([B, T, O], in the output's dtype) given the forward's inputs.
NoisyOutputGradients noisy_output_fused_backward(const at::Tensor& g, const at::Tensor& v, const at::Tensor& bound,
                                                 const at::Tensor& noise);

}  // namespace abmll::meta
