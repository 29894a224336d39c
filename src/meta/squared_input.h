// The `weight` family's squared input (the variance's x^2 @ M, reparam_ops.h's squared_matmul): x^2 in float32 from
// activations in float32, bf16 or fp16, and the input gradient 2 x h rounded to x's dtype, each as one pass over
// [N, I] (a loop on the CPU, a kernel on a GPU: cuda/squared_input_kernels.cu), where the chain of ATen ops makes two
// (x.to(float32), then its square) and three (2 x, times h, back to x's dtype). At the 8B shape with 8192 tokens, x
// is 67 MB in bf16 and 134 MB in float32, per adapted site and pass. The same values as the chain's (both exact
// where the chain is: bf16 and fp16 squares fit float32).
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::meta {

// Whether these take x: contiguous float32, bf16 or fp16, on the CPU or (when cuda/ is built and model.cuda_kernels
// holds) a GPU, with float32 results wanted.
bool squared_input_fused_applies(const at::Tensor& x, at::ScalarType result);

// x^2 in float32, x's shape.
at::Tensor squared_input(const at::Tensor& x);

// (2 x h) in x's dtype: h float32 of x's shape, contiguous.
at::Tensor squared_input_gradient(const at::Tensor& x, const at::Tensor& h);

}  // namespace abmll::meta
