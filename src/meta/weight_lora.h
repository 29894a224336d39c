// The `weight` family's adapter through the decoder's seam (model/linear.h): at an adapted site, a sequence of
// adapter group k (posterior g = k / S, sample s = k % S, S samples per posterior) gets, per token with input row x,
//   delta = x M_g^T + sqrt(v) * eps,   v_o = sum_i x_i^2 S_g,oi^2,   eps ~ N(0, 1) per token and output unit,
// the local reparameterisation of ABMLL.md 2(b): the output a weight dW ~ N(M, S^2) (entry-wise) would give, with
// noise drawn per token instead of per weight, without materialising dW. v comes from output_variance
// (weight_gaussian.h); the pieces keep only their inputs, v and the noise for backward (reparam_ops.h).
//
// Noise, one stream per task: posterior g (the meta-batch's task g) has its own 64-bit seed seed_g, which
// WeightGaussian::sample draws from that task's generator (task_noise.h). Each forward (counted by
// set_group_of_sequence, which the scorer calls once before every forward) draws, per site and per group k, the
// noise of the group's n_k sequences (its rows of the right-padded batch, in batch order) in chunks of
// kNoiseChunk = C positions: chunk c (positions [c C, c C + C)) is eps_k,c [n_k, C, O] = randn from a generator
// seeded with
//   chunk_seed = mix64(site_seed ^ mix64(s * 2^32 + c)),
//   site_seed  = mix64(mix64(seed_g ^ forward) ^ mix64(layer * 8 + projection + 1))     (projection q = 0 ... down = 6)
// in the factors' dtype: the CPU generator (mt19937, as torch.Generator().manual_seed) for CPU inputs, the
// device's Philox otherwise. The group's noise [n_k, T, O] is the chunks concatenated along time, cut at T.
// Hence a sequence's noise depends only on (seed_g, s, forward, site, its rank among its group's sequences), never
// on the other groups sharing the forward, their order, or the padded length T (set by the batch's longest
// sequence): a task run alone, or on another rank of a data-parallel run, draws exactly the noise it draws inside
// the whole meta-batch. A layer recomputed under gradient checkpointing (delta called again without a new
// set_group_of_sequence) draws the same eps. Distinct tasks, samples, sequences, forwards and sites get
// independent noise.
//
// Cost: per site and forward, one randn per group and chunk (G S ceil(T / C) draws; C = 64 so that a typical
// prompt is one chunk), and at most C - 1 positions of noise per group drawn beyond T and discarded.
//
// On a GPU (with model.cuda_kernels, the default: util/cuda_kernels.h) the noise is counter-based instead
// (counter_noise.h), drawn inside the fused noisy-output kernels (noisy_output_fused.h) forward and again in backward
// and never stored: the sequence of rank j among group k's sequences draws from the key
//   sequence_key = mix64(mix64(site_seed ^ mix64(s)) ^ mix64(j)),
// entry (t, o) a function of (sequence_key, t, o) alone. The same properties hold (a function of (seed_g, s,
// forward, site, j) only; independent across them), without the per-group draws, their concatenation, or a
// [B, T, O] noise tensor written and read twice per pass. GPU runs thus draw other numbers than CPU runs (as the
// `factor` family's, task_noise.h); use_counter_noise() makes the CPU draw the GPU's, for tests.
//
// Dimension letters: G posteriors, S samples per posterior, B sequences, T time, R rank, I / O in / out features.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "meta/weight_gaussian.h"
#include "model/linear.h"

namespace abmll::meta {

// splitmix64's finaliser (the mixing of the noise seeds above).
std::uint64_t mix64(std::uint64_t z);

class WeightLora : public model::LinearAdapter {
 public:
  // Positions per noise chunk (C above).
  static constexpr std::int64_t kNoiseChunk = 64;

  // `task_seeds[g]` is posterior g's noise seed; G = task_seeds.size() >= 1 posteriors, `samples` S >= 1: G * S
  // adapter groups.
  WeightLora(WeightScaleForm form, std::vector<std::uint64_t> task_seeds, int64_t samples);

  // A site's factors with the posterior dimension: b [G, O, R], a [G, R, I] (may require grad).
  void set_site(const model::LinearSite& site, WeightGaussianFactors grouped);

  // x [B, T, I] -> [B, T, O] in x's dtype (computed in the factors' dtype), or undefined at a site not set.
  at::Tensor delta(const at::Tensor& x, const model::LinearSite& site) const override;
  std::vector<at::Tensor> trainable_tensors() const override;
  // [B] int64 in [0, G S) (undefined: every sequence in group 0); starts the next forward's noise.
  void set_group_of_sequence(const at::Tensor& group_of_sequence) override;
  int64_t groups() const override { return posteriors() * samples_; }
  int64_t posteriors() const { return static_cast<int64_t>(task_seeds_.size()); }

  // The noise [rows, time, out] of the `rows` sequences of one group (task seed `task_seed`, sample `sample`) at
  // `site` in forward `forward` (1 for an adapter's first forward), as documented above (exposed for tests).
  static at::Tensor group_noise(std::uint64_t task_seed, std::int64_t sample, std::int64_t forward,
                                const model::LinearSite& site, std::int64_t rows, std::int64_t time, std::int64_t out,
                                const at::TensorOptions& options);
  // The counter-based noise key of the sequence of rank `rank` in its group, as documented above.
  static std::uint64_t sequence_noise_key(std::uint64_t task_seed, std::int64_t sample, std::int64_t forward,
                                          const model::LinearSite& site, std::int64_t rank);

  // Counter-based noise on the CPU too (it always is on a GPU): the GPU's noise, for tests of that path.
  void use_counter_noise(bool on) { counter_noise_ = on; }

 private:
  // The noise [B, T, O] of this forward at `site` (each group's rows from group_noise), as a function that draws
  // it: the autograd node of the output draws it again in backward rather than keeping it.
  std::function<at::Tensor()> batch_noise(const model::LinearSite& site, at::IntArrayRef shape,
                                          const at::TensorOptions& options) const;
  // Each of the batch's `batch` sequences' counter-based noise key at `site` in this forward.
  std::vector<std::uint64_t> sequence_keys(const model::LinearSite& site, std::int64_t batch) const;

  WeightScaleForm form_;
  std::vector<std::uint64_t> task_seeds_;  // [G]
  int64_t samples_ = 1;
  bool counter_noise_ = false;
  std::int64_t forward_ = 0;
  std::map<model::LinearSite, WeightGaussianFactors> sites_;
  // This forward's batch (all undefined / empty when group_of_sequence is undefined): each sequence's posterior
  // [B], each group's [n_k] and each posterior's rows (CPU int64, in batch order; [0] for none).
  at::Tensor posterior_of_sequence_;
  std::vector<at::Tensor> rows_of_group_, rows_of_posterior_;
  std::vector<int64_t> start_of_group_;  // each group's first row where its rows are consecutive, else -1
  // Where every posterior's rows are one contiguous range (as scoring lays out a meta-batch, task after task): the
  // ranges in batch order, so that delta works on views of the batch and joins the pieces once; else empty.
  struct Run {
    int64_t posterior, start, count;
  };
  std::vector<Run> runs_;
  int64_t block_ = 0;  // model::group_block_size(posterior_of_sequence_): posteriors' sequences in equal blocks
};

}  // namespace abmll::meta
