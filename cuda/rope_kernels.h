// Host entry points of rotary position embeddings on a GPU (src/model/rope.h), callable from code built without
// nvcc: y = x cos + rotate_half(x) sin in one pass over x, and its backward (the transposed rotation) in one pass over
// g, where ATen's chain makes four passes each way (at the Llama-3-8B shape, q and k are 80 MB per 8192 bf16 tokens
// and layer). Values are rounded where that chain rounds (each product, then their sum), so results equal it.
#pragma once

#include <cstdint>

#include "activation_dtype.h"

namespace abmll::cuda {

// x (and the result) [B, H, T, Dh], addressed through strides over (B, H, T) with a contiguous last dimension; the
// tables [B, T, Dh] likewise over (B, T). Dh even; B H T Dh < 2^31.
struct RopeLayout {
  std::int64_t batch = 0, heads = 0, time = 0, dim = 0;
  std::int64_t in_strides[3] = {0, 0, 0};   // of x (forward) or g (backward)
  std::int64_t out_strides[3] = {0, 0, 0};  // of y or g_x
  std::int64_t table_strides[2] = {0, 0};   // of cos and sin (the same layout)
};

// backward = false: out = in cos + rotate_half(in) sin; backward = true: out = in cos + rotate_half^T(in sin), the
// gradient of the former. Throws std::runtime_error for a bad layout or a failed launch.
void rope_apply(const void* in, const void* cos, const void* sin, void* out, const RopeLayout& layout,
                ActivationDtype dtype, bool backward, void* stream);

}  // namespace abmll::cuda
