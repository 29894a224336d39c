// Host entry points of SwiGLU's gating on a GPU (src/model/swiglu.h), callable from code built without nvcc: one pass
// over the [N, F] activations forward and one backward, where ATen's chain makes two and four (at the Llama-3-8B
// shape, gate and up are 235 MB each per 8192 bf16 tokens and layer). Values are rounded where that chain rounds
// (silu(gate), then the product; in backward g up, then its product with silu'(gate), and silu(gate), then its
// product with g), so results equal the chain's up to the last place of fused multiply-adds.
#pragma once

#include <cstdint>

#include "activation_dtype.h"

namespace abmll::cuda {

// out = silu(gate) * up over n contiguous entries of `dtype`. Throws std::runtime_error for a failed launch.
void swiglu_forward(const void* gate, const void* up, void* out, std::int64_t n, ActivationDtype dtype, void* stream);

// From the output's gradient g: g_gate = g up silu'(gate) and g_up = silu(gate) g (either may be null: not wanted),
// over n contiguous entries.
void swiglu_backward(const void* g, const void* gate, const void* up, void* g_gate, void* g_up, std::int64_t n,
                     ActivationDtype dtype, void* stream);

}  // namespace abmll::cuda
