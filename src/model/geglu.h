// GeGLU's gating, gelu(gate) * up (Gemma's MLP), as one autograd function that keeps only its two inputs for
// backward, as swiglu does for SiLU: as ATen ops, gelu(gate) would be kept as well (at Gemma-2-9B's F = 14336, 28 MB
// per 1024 bf16 tokens and layer). Backward recomputes gelu(gate) and rounds where ATen's chain rounds, so values and
// gradients match it in every dtype; it is itself differentiable (second-order meta-gradients). ATen's kernels on
// every device.
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::model {

// gate, up [..., F] of one dtype -> gelu(gate) * up; `tanh_approximation` is transformers' "gelu_pytorch_tanh",
// otherwise the exact GELU.
at::Tensor geglu(const at::Tensor& gate, const at::Tensor& up, bool tanh_approximation);

}  // namespace abmll::model
