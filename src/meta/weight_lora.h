// The `weight` family's adapter through the decoder's seam (model/linear.h): at an adapted site, a sequence of
// adapter group k (posterior g = k / S, S samples per posterior) gets, per token with input row x,
//   delta = x M_g^T + sqrt(v) * eps,   v_o = sum_i x_i^2 S_g,oi^2,   eps ~ N(0, 1) per token and output unit,
// the local reparameterisation of ABMLL.md 2(b): the output a weight dW ~ N(M, S^2) (entry-wise) would give, with
// noise drawn per token instead of per weight, without materialising dW. v comes from local_reparam_variance
// (low-rank for `linear`, one transient S^2 per layer for `softplus`).
//
// Noise: each forward (counted by set_group_of_sequence, which the scorer calls once before every forward) draws,
// per site, eps [B, T, O] (right-padded batch: row b, position t) from a generator seeded with
//   mix64(mix64(seed ^ forward) ^ mix64(layer * 8 + projection + 1))     (projection q = 0 ... down = 6)
// in the factors' dtype: the CPU generator (mt19937, as torch.Generator().manual_seed) for CPU inputs, the
// device's Philox otherwise. So a forward is reproducible from (seed, forward), and a layer recomputed under
// gradient checkpointing draws the same eps. Distinct sequences, samples and forwards get independent noise.
//
// Dimension letters: G posteriors, S samples per posterior, B sequences, T time, R rank, I / O in / out features.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <vector>

#include "meta/weight_gaussian.h"
#include "model/linear.h"

namespace abmll::meta {

// splitmix64's finaliser (the mixing of the noise seeds above).
std::uint64_t mix64(std::uint64_t z);

class WeightLora : public model::LinearAdapter {
 public:
  // `posteriors` G >= 1, `samples` S >= 1: G * S adapter groups.
  WeightLora(WeightScaleForm form, int64_t posteriors, int64_t samples, std::uint64_t seed);

  // A site's factors with the posterior dimension: b [G, O, R], a [G, R, I] (may require grad).
  void set_site(const model::LinearSite& site, WeightGaussianFactors grouped);

  // x [B, T, I] -> [B, T, O] in x's dtype (computed in the factors' dtype), or undefined at a site not set.
  at::Tensor delta(const at::Tensor& x, const model::LinearSite& site) const override;
  std::vector<at::Tensor> trainable_tensors() const override;
  // [B] int64 in [0, G S) (undefined: every sequence in group 0); starts the next forward's noise.
  void set_group_of_sequence(const at::Tensor& group_of_sequence) override;
  int64_t groups() const override { return posteriors_ * samples_; }

  // The noise of `site` in forward `forward` for an output of `shape` [B, T, O] (exposed for tests).
  static at::Tensor noise(std::uint64_t seed, std::int64_t forward, const model::LinearSite& site,
                          at::IntArrayRef shape, const at::TensorOptions& options);

 private:
  WeightScaleForm form_;
  int64_t posteriors_ = 1, samples_ = 1;
  std::uint64_t seed_ = 0;
  std::int64_t forward_ = 0;
  std::map<model::LinearSite, WeightGaussianFactors> sites_;
  at::Tensor posterior_of_sequence_;  // [B] int64 (CPU): group / S, or undefined
};

}  // namespace abmll::meta
