// RMSNorm as transformers computes it (LlamaRMSNorm / Qwen2RMSNorm): normalised in float32, cast back to the input's
// dtype, and only then multiplied by the weight, so bfloat16 models round where the reference rounds. One autograd
// function that keeps its input as given for backward, not the float32 copy a chain of ATen ops would keep (at
// the Llama-3-8B width, 16 MB instead of 32 MB per 2048 bf16 tokens, twice per layer). On a GPU, forward and
// first-order backward are ATen's fused RMSNorm kernels (one pass each), rounded as above.
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::model {

// x [..., D], weight [D] -> [..., D]: weight * (x / sqrt(mean(x^2) + eps)). `scale_before_rounding` is Gemma's
// order (GemmaRMSNorm): the float32 normalised value times a float32 weight (its 1 + w), then rounded to x's dtype;
// composed ops on every device (no fused kernel takes that order).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, bool scale_before_rounding = false);

}  // namespace abmll::model
