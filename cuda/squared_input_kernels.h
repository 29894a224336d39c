// Host entry points of the `weight` family's squared input on a GPU (src/meta/squared_input.h), callable from code
// built without nvcc: x^2 in float32 from activations in float32, bf16 or fp16, and the gradient 2 x h back in x's
// dtype, one pass each over n contiguous entries.
#pragma once

#include <cstdint>

#include "activation_dtype.h"

namespace abmll::cuda {

// out[i] = float(x[i])^2. Throws std::runtime_error for a failed launch.
void squared_input(const void* x, ActivationDtype dtype, float* out, std::int64_t n, void* stream);

// out[i] = (2 float(x[i]) h[i]) rounded to x's dtype.
void squared_input_gradient(const void* x, const float* h, ActivationDtype dtype, void* out, std::int64_t n,
                            void* stream);

}  // namespace abmll::cuda
