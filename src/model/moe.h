// A mixture-of-experts feed-forward block (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, GraniteMoE, DeepSeek-V2 and -V3,
// gpt-oss), as transformers' sparse MoE blocks compute it: a router picks each token's k experts by score, the token
// goes through those experts' gated MLPs, and their outputs are summed weighted by the probabilities (see MoeConfig).
// Only the chosen experts run (each on its own tokens), so the work is k expert MLPs per token, whatever E is.
// Gradients reach the input through the experts and through the router's probabilities; the experts and the router are
// frozen and never adapted.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "model/mlp.h"
#include "model/model_config.h"

namespace abmll::model {

struct MoeWeights {
  at::Tensor router;                // [E, D], the `gate` module (gpt-oss: `router`)
  at::Tensor router_bias;           // [E], gpt-oss's; otherwise undefined
  // E gated MLPs: gate and up [Fe, D] (GraniteMoE: gate_up), down [D, Fe]; no biases but gpt-oss's.
  std::vector<MlpWeights> experts;
  // Qwen2-MoE's, [Fs, D] / [D, Fs] (DeepSeek's shared experts: one MLP of their summed width); otherwise undefined.
  MlpWeights shared_expert;
  at::Tensor shared_expert_gate;    // [1, D]: the shared expert's output is scaled by sigmoid(x g^T) (Qwen2-MoE)
  at::Tensor choice_bias;           // [E] float32: DeepSeek-V3's e_score_correction_bias; otherwise undefined
  bool defined() const { return router.defined(); }
};

// x [B, T, D] -> [B, T, D]. One host read of how many tokens each expert got (to split them), then one gather of
// the routed rows, one MLP per expert with tokens, one weighted scatter-add back: every token's experts added in
// the order of their index, as transformers' loop over experts adds them. `layer` only names the MLP sites.
at::Tensor moe(const at::Tensor& x, const MoeWeights& w, const MoeConfig& config, Activation activation,
               int64_t layer);

}  // namespace abmll::model
