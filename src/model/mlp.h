// The feed-forward block: gated, down(act(gate(x)) * up(x)), act SiLU (SwiGLU: Llama, Qwen, Mistral) or GELU (GeGLU:
// Gemma); or (Apertus) ungated, down(xielu(up(x))).
// (Granite-4.0's shared MLP is Phi-3's form under other names.)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/linear.h"
#include "model/model_config.h"
#include "model/xielu.h"

namespace abmll::model {

struct MlpWeights {
  LinearWeights gate;  // [F, D] (none in an ungated MLP)
  LinearWeights up;    // [F, D]
  LinearWeights down;  // [D, F]
  LinearWeights gate_up;  // Phi-3, instead of gate and up: [2F, D], gate's rows first
  XieluWeights xielu;     // Apertus's activation's parameters (Activation::xielu)
  // The sites LoRA knows gate_up and down by: Projection::gate_up and down, or (Granite-4.0's shared MLP)
  // shared_gate_up and shared_down.
  Projection gate_up_site = Projection::gate_up;
  Projection down_site = Projection::down;
};

// x [B, T, D] -> [B, T, D]. Each projection goes through linear() at (layer, gate/up/down).
at::Tensor mlp(const at::Tensor& x, const MlpWeights& w, Activation activation, int64_t layer,
               const LinearAdapter* adapter);

}  // namespace abmll::model
