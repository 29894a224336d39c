// The adapter seam: every adaptable projection of the decoder (q/k/v/o, gate/up/down) goes through linear(), which
// applies the frozen base weight and then whatever a LinearAdapter adds at that site. Per-sequence LoRA adapters
// (each sequence of a batch with its own task's low-rank factors) plug in here without touching the decoder.
#pragma once

#include <ATen/core/Tensor.h>

#include <compare>
#include <cstdint>
#include <vector>

#include "model/weight_names.h"

namespace abmll::model {

// A frozen projection: weight [out, in], bias [out] or undefined.
struct LinearWeights {
  at::Tensor weight;
  at::Tensor bias;
};

// Where in the decoder a projection is applied.
struct LinearSite {
  int64_t layer = 0;
  Projection projection = Projection::q;
  auto operator<=>(const LinearSite&) const = default;
};

// Adds a learned term to a projection's output. Implementations may hold per-sequence state (one adapter per
// sequence of the batch); the decoder only calls delta(). Must not modify x.
class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  // x: [B, T, in], the projection's input. Returns [B, T, out] to add to x W^T + b, or an undefined tensor when this
  // site is not adapted.
  virtual at::Tensor delta(const at::Tensor& x, const LinearSite& site) const = 0;
  // The tensors delta() differentiates through that may require grad (e.g. LoRA factors, or the parameters they are
  // sampled from). Gradient checkpointing passes them to its autograd node so that recomputation in backward
  // reaches them; an adapter that hides one gets no gradient for it under checkpointing.
  virtual std::vector<at::Tensor> trainable_tensors() const { return {}; }
  // Which adapter group each sequence of the next forward's batch uses: [B] int64 (see BatchedLora). Callers that
  // build batches (scoring) set it before each forward; adapters without groups ignore it.
  virtual void set_group_of_sequence(const at::Tensor& group_of_sequence) {}
  // How many adapter groups a batch's sequences choose among (1 for adapters without groups).
  virtual int64_t groups() const { return 1; }
};

// x [B, T, in] -> [B, T, out]: x W^T + b, plus adapter->delta(x, site) when an adapter is given.
at::Tensor linear(const at::Tensor& x, const LinearWeights& w, const LinearSite& site,
                  const LinearAdapter* adapter);

}  // namespace abmll::model
