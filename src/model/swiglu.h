// SwiGLU's gating, silu(gate) * up, as one autograd function that keeps only its two inputs for backward. As ATen
// ops, silu(gate) would be kept as well: the MLP's [N, F] activations kept for backward go from three to two (at the
// Llama-3-8B shape, F = 14336, 28 MB per 1024 bf16 tokens and layer). Backward recomputes silu(gate) (elementwise)
// and rounds where ATen's chain rounds, so values and gradients match it in every dtype; it is itself differentiable
// (second-order meta-gradients). On a GPU, forward and first-order backward are one kernel each
// (cuda/swiglu_kernels.cu).
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::model {

// gate, up [..., F] of one dtype -> silu(gate) * up.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

}  // namespace abmll::model
