// Gemma-2's soft cap, cap * tanh(x / cap): bounds attention scores and logits smoothly to (-cap, cap); and the
// final transform of a model's logits.
#pragma once

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/tanh.h>

namespace abmll::model {

// x capped in x's dtype, the reference's order of operations (divide, tanh, multiply); x itself when cap is 0.
inline at::Tensor soft_cap(const at::Tensor& x, double cap) { return cap > 0.0 ? at::tanh(x / cap) * cap : x; }

// A model's logits from the lm_head projection x: soft-capped (Gemma-2's final_logit_softcapping), divided by
// `divisor` (Granite's logits_scaling), multiplied by `multiplier` (Cohere's logit_scale), each in x's dtype as the
// references compute them; x itself for 0, 1 and 1.
inline at::Tensor final_logits(const at::Tensor& x, double cap, double divisor, double multiplier) {
  const at::Tensor capped = soft_cap(x, cap);
  const at::Tensor divided = divisor != 1.0 ? capped / divisor : capped;
  return multiplier != 1.0 ? divided * multiplier : divided;
}

}  // namespace abmll::model
