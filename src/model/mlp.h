// The SwiGLU feed-forward block of Llama / Qwen2 / Qwen3: down(silu(gate(x)) * up(x)).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/linear.h"

namespace abmll::model {

struct MlpWeights {
  LinearWeights gate;  // [F, D]
  LinearWeights up;    // [F, D]
  LinearWeights down;  // [D, F]
};

// x [B, T, D] -> [B, T, D]. Each projection goes through linear() at (layer, gate/up/down).
at::Tensor mlp(const at::Tensor& x, const MlpWeights& w, int64_t layer, const LinearAdapter* adapter);

}  // namespace abmll::model
