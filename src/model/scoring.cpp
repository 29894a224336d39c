// Continuation scoring (see scoring.h).
#include "model/scoring.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/logsumexp.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "model/soft_cap.h"
#include "util/error.h"

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// float32 for bfloat16 / float16 / float32 models, float64 for float64 ones (gradient checks).
at::ScalarType accumulation_type(at::ScalarType dtype) { return at::promote_types(dtype, at::kFloat); }

// Rows per chunk so that [rows, V] float32 stays under `bytes` (at least one row).
int64_t chunk_rows(int64_t vocab, int64_t bytes) {
  return std::max<int64_t>(1, bytes / (vocab * static_cast<int64_t>(sizeof(float))));  // (float64: twice that)
}

// log_softmax(z)[target] per row with z = h W^T, or z = cap tanh(h W^T / cap) when the model soft-caps its logits
// (Gemma-2; capped in the model's dtype, as the reference caps them), divided by `divisor` (Granite's
// logits_scaling) and multiplied by `multiplier` (Cohere's logit_scale), in the model's dtype too, chunked; backward
// recomputes each chunk's logits:
//   d/dh = ((onehot(target) - softmax(z)) * dz/d(h W^T)) W, scaled by the row's incoming gradient,
// where dz/d(h W^T) = (1 - tanh^2(h W^T / cap)) multiplier / divisor with a cap, multiplier / divisor without.
struct ChunkedLogProb : public torch::autograd::Function<ChunkedLogProb> {
  // hidden [N, D], weight [V, D] (frozen), targets [N] -> [N] float32.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t rows, double cap, double divisor,
                            double multiplier) {
    const int64_t n = hidden.size(0);
    const at::ScalarType acc = accumulation_type(hidden.scalar_type());
    at::Tensor out = at::empty({n}, hidden.options().dtype(acc));
    for (int64_t s = 0; s < n; s += rows) {
      const int64_t m = std::min(rows, n - s);
      const at::Tensor logits =
          final_logits(at::linear(hidden.narrow(0, s, m), weight), cap, divisor, multiplier).to(acc);
      out.narrow(0, s, m).copy_(logits.gather(1, targets.narrow(0, s, m).unsqueeze(1)).squeeze(1) -
                                at::logsumexp(logits, {1}));
    }
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["rows"] = rows;
    ctx->saved_data["cap"] = cap;
    ctx->saved_data["divisor"] = divisor;
    ctx->saved_data["multiplier"] = multiplier;
    return out;
  }

  // Built from differentiable ops on the saved hidden states (the softmax is recomputed, not saved), so that a
  // differentiable backward (create_graph, second-order meta-gradients) differentiates this formula correctly.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2];
    const at::ScalarType acc = accumulation_type(hidden.scalar_type());
    const at::Tensor grad = grad_outputs[0].to(acc);  // [N]
    const int64_t rows = ctx->saved_data["rows"].toInt(), n = hidden.size(0);
    const double cap = ctx->saved_data["cap"].toDouble(), divisor = ctx->saved_data["divisor"].toDouble(),
                 multiplier = ctx->saved_data["multiplier"].toDouble();
    std::vector<at::Tensor> parts;
    for (int64_t s = 0; s < n; s += rows) {
      const int64_t m = std::min(rows, n - s);
      const at::Tensor raw = at::linear(hidden.narrow(0, s, m), weight);             // [m, V]
      const at::Tensor logits = final_logits(raw, cap, divisor, multiplier).to(acc);   // [m, V]
      const at::Tensor g = grad.narrow(0, s, m).unsqueeze(1);                         // [m, 1]
      at::Tensor grad_logits = at::softmax(logits, 1) * (-g);                          // -g softmax
      grad_logits = grad_logits.scatter_add(1, targets.narrow(0, s, m).unsqueeze(1), g);  // + g onehot
      if (divisor != 1.0) grad_logits = grad_logits / divisor;                        // through the division
      if (multiplier != 1.0) grad_logits = grad_logits * multiplier;                  // through the product
      if (cap > 0.0) grad_logits = grad_logits * (1.0 - at::tanh(raw.to(acc) / cap).pow(2));  // through the cap
      parts.push_back(at::matmul(grad_logits.to(hidden.scalar_type()), weight));       // [m, D]
    }
    const at::Tensor grad_hidden = parts.empty() ? at::zeros_like(hidden) : at::cat(parts);
    return {grad_hidden, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor token_log_probs(const Decoder& decoder, const at::Tensor& hidden, const at::Tensor& targets,
                           int64_t max_chunk_bytes) {
  const at::Tensor& weight = decoder.weights().lm_head;
  if (weight.requires_grad()) throw Error("token_log_probs: lm_head must be frozen (no gradient is computed for it)");
  if (hidden.dim() != 2 || targets.dim() != 1 || targets.size(0) != hidden.size(0))
    throw Error(fmt::format("token_log_probs: hidden must be [N, D] and targets [N], got {} and {} dims",
                            hidden.dim(), targets.dim()));
  return ChunkedLogProb::apply(hidden, weight, targets.to(hidden.device(), at::kLong),
                               chunk_rows(weight.size(0), max_chunk_bytes), decoder.config().logit_softcap,
                               decoder.config().logits_scaling, decoder.config().logit_scale);
}

PreparedItems prepare_items(const Decoder& decoder, const std::vector<ScoringItem>& items) {
  const int64_t count = static_cast<int64_t>(items.size());
  int64_t t = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].prompt.empty()) throw InputError(fmt::format("scoring: item {} has an empty prompt", i));
    t = std::max<int64_t>(t, static_cast<int64_t>(items[i].prompt.size() + items[i].continuation.size()));
  }
  // The right-padded batch, and for every continuation token the row that predicts it (its position - 1).
  at::Tensor ids = at::zeros({count, t}, at::kLong), mask = at::zeros({count, t}, at::kLong);
  std::vector<int64_t> rows, targets, item_of_row, lengths, groups;
  auto* id = ids.data_ptr<int64_t>();
  auto* m = mask.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const ScoringItem& item = items[static_cast<std::size_t>(i)];
    const int64_t p = static_cast<int64_t>(item.prompt.size()), c = static_cast<int64_t>(item.continuation.size());
    std::copy(item.prompt.begin(), item.prompt.end(), id + i * t);
    std::copy(item.continuation.begin(), item.continuation.end(), id + i * t + p);
    std::fill(m + i * t, m + i * t + p + c, 1);
    for (int64_t j = 0; j < c; ++j) {
      rows.push_back(i * t + p - 1 + j);
      targets.push_back(item.continuation[static_cast<std::size_t>(j)]);
      item_of_row.push_back(i);
    }
    lengths.push_back(c);
    groups.push_back(item.group);
  }
  const at::Device device = decoder.device();
  PreparedItems batch;
  batch.input_ids = ids.to(device);
  batch.layout = decoder.with_rope(layout_from_mask(mask));
  batch.rows = at::tensor(rows, at::kLong).to(device);
  batch.targets = at::tensor(targets, at::kLong).to(device);
  batch.item_of_row = at::tensor(item_of_row, at::kLong).to(device);
  batch.groups = at::tensor(groups, at::kLong);
  batch.tokens = at::tensor(lengths, at::kLong);
  return batch;
}

ContinuationScores score_prepared(const Decoder& decoder, const PreparedItems& batch, LinearAdapter* adapter,
                                  const ScoringOptions& options) {
  if (adapter != nullptr) adapter->set_group_of_sequence(batch.groups);
  // Continuation ids are checked by the forward (they are part of the sequence).
  const at::Tensor hidden = decoder.forward(batch.input_ids, batch.layout, adapter, options.forward);  // [B, T, D]
  const at::Tensor picked = hidden.reshape({-1, hidden.size(2)}).index_select(0, batch.rows);        // [N, D]
  const at::Tensor lp = token_log_probs(decoder, picked, batch.targets, options.max_chunk_bytes);
  ContinuationScores scores;
  scores.tokens = batch.tokens;
  scores.log_prob = at::zeros({batch.tokens.size(0)}, lp.options()).index_add(0, batch.item_of_row, lp);
  return scores;
}

ContinuationScores score_continuations(const Decoder& decoder, const std::vector<ScoringItem>& items,
                                       LinearAdapter* adapter, const ScoringOptions& options) {
  return score_prepared(decoder, prepare_items(decoder, items), adapter, options);
}

namespace {

ContinuationScores score_packed(const Decoder& decoder, const SharedPromptBatch& packed, LinearAdapter* adapter,
                                const ScoringOptions& options) {
  const at::Device device = decoder.device();
  const PreparedItems batch{packed.input_ids.to(device),
                            decoder.with_rope(packed.layout),
                            at::tensor(packed.rows, at::kLong).to(device),
                            at::tensor(packed.targets, at::kLong).to(device),
                            at::tensor(packed.owner, at::kLong).to(device),
                            at::tensor(packed.groups, at::kLong),
                            at::tensor(packed.lengths, at::kLong)};
  return score_prepared(decoder, batch, adapter, options);
}

}  // namespace

ContinuationScores score_shared_prompts(const Decoder& decoder, const std::vector<SharedPromptItem>& items,
                                        LinearAdapter* adapter, const ScoringOptions& options) {
  return score_packed(decoder, pack_shared_prompts(items), adapter, options);
}

ContinuationScores score_prompt_rows(const Decoder& decoder, const std::vector<PromptRow>& rows,
                                     LinearAdapter* adapter, const ScoringOptions& options) {
  return score_packed(decoder, pack_prompt_rows(rows), adapter, options);
}

}  // namespace abmll::model
