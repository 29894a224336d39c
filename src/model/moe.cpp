// The mixture-of-experts block (see moe.h). Dimension letters: N tokens (B*T), D hidden, E experts, k experts per
// token, R = k*N routed (token, expert) pairs.
#include "model/moe.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/bincount.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/clamp_max.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/logical_not.h>
#include <ATen/ops/max.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/split_with_sizes.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include <cmath>
#include <tuple>
#include <utility>

namespace abmll::model {

namespace {

// DeepSeek's group-limited routing: `choice` [N, E] with every expert outside each token's groups_per_token best
// groups set to -inf (V3, whose groups rank by the sum of their two best biased scores) or to 0 (V2, ranked by their
// best probability), as the reference masks them.
at::Tensor limit_to_best_groups(const at::Tensor& choice, const MoeConfig& config) {
  const int64_t n = choice.size(0), groups = config.groups, per_group = config.num_experts / groups;
  const bool sigmoid = config.scoring == RouterScoring::sigmoid;
  const at::Tensor grouped = choice.view({n, groups, per_group});
  const at::Tensor group_scores =
      sigmoid ? std::get<0>(at::topk(grouped, 2, -1)).sum(-1) : std::get<0>(at::max(grouped, -1));  // [N, G]
  const at::Tensor best = std::get<1>(at::topk(group_scores, config.groups_per_token, -1));       // [N, tg]
  const at::Tensor kept = at::zeros({n, groups}, choice.options().dtype(at::kBool))
                              .scatter(1, best, true)
                              .unsqueeze(-1)
                              .expand({n, groups, per_group})
                              .reshape({n, config.num_experts});
  return choice.masked_fill(kept.logical_not(), sigmoid ? -INFINITY : 0.0);
}

// The router: each token's k experts and their weights, [N, k] each. Probabilities in float32 (float64 stays
// float64), the k largest, renormalised over them when the model does (GraniteMoE and gpt-oss: the softmax of the k
// largest logits, gpt-oss's with the router's bias; DeepSeek: logits in float32, V3's sigmoid scores and its bias for
// the choice only, group-limited choice, weights times routed_scaling_factor); rounded to x's dtype unless the model
// weights in float32 (Mixtral, DeepSeek).
std::pair<at::Tensor, at::Tensor> route(const at::Tensor& flat, const MoeWeights& w, const MoeConfig& config) {
  const at::ScalarType wide = at::promote_types(flat.scalar_type(), at::kFloat);
  const int64_t k = config.experts_per_token;
  at::Tensor top, chosen;  // [N, k] each
  if (config.softmax_top_logits) {
    std::tie(top, chosen) = at::topk(at::linear(flat, w.router, w.router_bias).to(wide), k, -1);
    top = at::softmax(top, -1);
  } else {
    const at::Tensor logits =
        config.float32_logits ? at::linear(flat.to(wide), w.router.to(wide)) : at::linear(flat, w.router);  // [N, E]
    const at::Tensor scores = config.scoring == RouterScoring::sigmoid ? at::sigmoid(logits.to(wide))
                                                                        : at::softmax(logits, -1, wide);
    if (!w.choice_bias.defined() && config.groups <= 1) {
      std::tie(top, chosen) = at::topk(scores, k, -1);
    } else {
      at::Tensor choice = w.choice_bias.defined() ? scores + w.choice_bias : scores;
      if (config.groups > 1) choice = limit_to_best_groups(choice, config);
      chosen = std::get<1>(at::topk(choice, k, -1));
      top = scores.gather(1, chosen);
    }
  }
  if (config.normalize_weights) {
    const at::Tensor sum = top.sum(-1, /*keepdim=*/true);
    top = top / (config.scoring == RouterScoring::sigmoid ? sum + 1e-20 : sum);  // (as DeepseekV3TopkRouter)
  }
  if (config.routed_scaling_factor != 1.0) top = top * config.routed_scaling_factor;
  if (!config.float32_weights) top = top.to(flat.scalar_type());
  return {top, chosen};
}

// One expert's MLP: the model's gated MLP, or gpt-oss's clamped SwiGLU (with biases):
// (clamp(up, -l, l) + 1) * g sigmoid(alpha g), g = min(gate, l). x [N, D] -> [N, D].
at::Tensor expert_mlp(const at::Tensor& x, const MlpWeights& w, const MoeConfig& config, Activation activation,
                      int64_t layer) {
  if (config.swiglu_limit <= 0.0) return mlp(x, w, activation, layer, /*adapter=*/nullptr);
  const double limit = config.swiglu_limit;
  const at::Tensor gate = at::linear(x, w.gate.weight, w.gate.bias).clamp_max(limit);  // [N, Fe]
  const at::Tensor up = at::linear(x, w.up.weight, w.up.bias).clamp(-limit, limit);    // [N, Fe]
  return at::linear((up + 1) * (gate * at::sigmoid(gate * config.swiglu_alpha)), w.down.weight, w.down.bias);
}

}  // namespace

at::Tensor moe(const at::Tensor& x, const MoeWeights& w, const MoeConfig& config, Activation activation,
               int64_t layer) {
  const int64_t d = x.size(-1);
  const at::Tensor flat = x.reshape({-1, d});  // [N, D]
  const int64_t n = flat.size(0);
  if (n == 0) return at::zeros_like(x);
  const auto [top, chosen] = route(flat, w, config);  // [N, k] each

  // The routed pairs slot-major (entry s*N + t: token t's s-th choice), sorted stably by expert: each expert's tokens
  // in the order transformers' loop takes them (by slot, then token).
  const at::Tensor expert_of = chosen.t().reshape({-1});                                // [R]
  const at::Tensor order = std::get<1>(at::sort(expert_of, /*stable=*/true, 0, false));  // [R]
  const at::Tensor tokens = order.remainder(n);                                         // [R] token of each pair
  const at::Tensor weights = top.t().reshape({-1}).index_select(0, order).unsqueeze(1);  // [R, 1]
  const at::Tensor counts = at::bincount(expert_of, {}, config.num_experts).cpu();       // [E], the one host read
  const at::Tensor routed = flat.index_select(0, tokens);                               // [R, D]

  // Each expert's rows, split in one op: its backward concatenates the E gradients once, where E narrows would each
  // write a zero-filled [R, D] gradient (quadratic in the experts).
  const int64_t* count = counts.data_ptr<int64_t>();
  const std::vector<at::Tensor> pieces =
      at::split_with_sizes(routed, c10::IntArrayRef(count, static_cast<std::size_t>(config.num_experts)), 0);
  std::vector<at::Tensor> outputs;  // each expert's [tokens, D], in expert order
  for (int64_t e = 0; e < config.num_experts; ++e) {
    if (count[e] == 0) continue;
    const MlpWeights& expert = w.experts[static_cast<std::size_t>(e)];
    outputs.push_back(expert_mlp(pieces[static_cast<std::size_t>(e)], expert, config, activation, layer));
  }
  // Weighted (in float32 for Mixtral, then rounded) and added to each token's row, pair by pair in expert order.
  const at::Tensor weighted = (at::cat(outputs) * weights).to(x.scalar_type());  // [R, D]
  at::Tensor out = at::zeros_like(flat).index_add(0, tokens, weighted);          // [N, D]

  if (w.shared_expert.down.weight.defined()) {  // every token through the shared expert too (Qwen2-MoE's gated)
    const at::Tensor shared = mlp(flat, w.shared_expert, activation, layer, /*adapter=*/nullptr);
    out = w.shared_expert_gate.defined() ? out + at::sigmoid(at::linear(flat, w.shared_expert_gate)) * shared
                                         : out + shared;
  }
  return out.view(x.sizes());
}

}  // namespace abmll::model
