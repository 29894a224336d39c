// Gemma-2's soft cap, cap * tanh(x / cap): bounds attention scores and logits smoothly to (-cap, cap).
#pragma once

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/tanh.h>

namespace abmll::model {

// x capped in x's dtype, the reference's order of operations (divide, tanh, multiply); x itself when cap is 0.
inline at::Tensor soft_cap(const at::Tensor& x, double cap) { return cap > 0.0 ? at::tanh(x / cap) * cap : x; }

}  // namespace abmll::model
