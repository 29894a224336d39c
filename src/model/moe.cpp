// The mixture-of-experts block (see moe.h). Dimension letters: N tokens (B*T), D hidden, E experts, k experts per
// token, R = k*N routed (token, expert) pairs.
#include "model/moe.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/bincount.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/zeros_like.h>

#include <tuple>

namespace abmll::model {

at::Tensor moe(const at::Tensor& x, const MoeWeights& w, const MoeConfig& config, Activation activation,
               int64_t layer) {
  const int64_t d = x.size(-1);
  const at::Tensor flat = x.reshape({-1, d});  // [N, D]
  const int64_t n = flat.size(0);
  if (n == 0) return at::zeros_like(x);

  // The router: probabilities in float32 (float64 stays float64), the k largest, renormalised over them when the
  // model does (GraniteMoE: the softmax of the k largest logits); rounded to x's dtype unless the model weights in
  // float32 (Mixtral).
  const at::ScalarType wide = at::promote_types(x.scalar_type(), at::kFloat);
  const at::Tensor scores = at::linear(flat, w.router);  // [N, E] in x's dtype
  at::Tensor top, chosen;                                // [N, k] each
  if (config.softmax_top_logits) {
    std::tie(top, chosen) = at::topk(scores.to(wide), config.experts_per_token, -1);
    top = at::softmax(top, -1);
  } else {
    std::tie(top, chosen) = at::topk(at::softmax(scores, -1, wide), config.experts_per_token, -1);
  }
  if (config.normalize_weights) top = top / top.sum(-1, /*keepdim=*/true);
  if (!config.float32_weights) top = top.to(x.scalar_type());

  // The routed pairs slot-major (entry s*N + t: token t's s-th choice), sorted stably by expert: each expert's tokens
  // in the order transformers' loop takes them (by slot, then token).
  const at::Tensor expert_of = chosen.t().reshape({-1});                                // [R]
  const at::Tensor order = std::get<1>(at::sort(expert_of, /*stable=*/true, 0, false));  // [R]
  const at::Tensor tokens = order.remainder(n);                                         // [R] token of each pair
  const at::Tensor weights = top.t().reshape({-1}).index_select(0, order).unsqueeze(1);  // [R, 1]
  const at::Tensor counts = at::bincount(expert_of, {}, config.num_experts).cpu();       // [E], the one host read
  const at::Tensor routed = flat.index_select(0, tokens);                               // [R, D]

  std::vector<at::Tensor> outputs;  // each expert's [tokens, D], in expert order
  const int64_t* count = counts.data_ptr<int64_t>();
  int64_t start = 0;
  for (int64_t e = 0; e < config.num_experts; ++e) {
    if (count[e] == 0) continue;
    outputs.push_back(mlp(routed.narrow(0, start, count[e]), w.experts[static_cast<std::size_t>(e)], activation,
                          layer, /*adapter=*/nullptr));
    start += count[e];
  }
  // Weighted (in float32 for Mixtral, then rounded) and added to each token's row, pair by pair in expert order.
  const at::Tensor weighted = (at::cat(outputs) * weights).to(x.scalar_type());  // [R, D]
  at::Tensor out = at::zeros_like(flat).index_add(0, tokens, weighted);          // [N, D]

  if (w.shared_expert_gate.defined()) {  // Qwen2-MoE: every token through the shared expert too, gated
    const at::Tensor shared = mlp(flat, w.shared_expert, activation, layer, /*adapter=*/nullptr);
    out = out + at::sigmoid(at::linear(flat, w.shared_expert_gate)) * shared;
  }
  return out.view(x.sizes());
}

}  // namespace abmll::model
