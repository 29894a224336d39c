// The weight family's local-reparameterisation adapter (see weight_lora.h).
#include "meta/weight_lora.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/floor_divide.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/nonzero.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/zeros.h>
#include <ATen/record_function.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "meta/reparam_ops.h"
#include "meta/task_noise.h"
#include "model/low_rank_product.h"
#include "model/weight_names.h"
#include "util/cuda_kernels.h"
#include "util/error.h"

namespace abmll::meta {
namespace {

// [B] int64 (CPU) -> for each value v in [0, n), the positions holding v, in order ([0] int64 where none does).
std::vector<at::Tensor> positions_of(const at::Tensor& values, std::int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(static_cast<std::size_t>(n));
  for (std::int64_t v = 0; v < n; ++v) out.push_back(at::nonzero(values == v).squeeze(1));
  return out;
}

// Increasing positions (CPU) -> the first, where they are consecutive (first, first + 1, ...); -1 otherwise or empty.
std::int64_t consecutive_start(const at::Tensor& rows) {
  const std::int64_t n = rows.numel();
  if (n == 0) return -1;
  const std::int64_t first = rows[0].item<std::int64_t>();
  return rows[n - 1].item<std::int64_t>() - first == n - 1 ? first : -1;
}

}  // namespace

std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

WeightLora::WeightLora(WeightScaleForm form, std::vector<std::uint64_t> task_seeds, int64_t samples)
    : form_(form), task_seeds_(std::move(task_seeds)), samples_(samples) {
  if (task_seeds_.empty() || samples < 1)
    throw Error(fmt::format("WeightLora: {} posteriors x {} samples", task_seeds_.size(), samples));
}

void WeightLora::set_site(const model::LinearSite& site, WeightGaussianFactors f) {
  const int64_t g = posteriors();
  const bool ok = f.b_mu.defined() && f.a_mu.defined() && f.b_sigma.defined() && f.a_sigma.defined() &&
                  f.b_mu.dim() == 3 && f.a_mu.dim() == 3 && f.b_mu.size(0) == g && f.a_mu.size(0) == g &&
                  f.b_sigma.sizes() == f.b_mu.sizes() && f.a_sigma.sizes() == f.a_mu.sizes() &&
                  f.b_mu.size(2) == f.a_mu.size(1);
  if (!ok)
    throw Error(fmt::format("WeightLora: {}: factors must be b [G={}, O, R] and a [G, R, I] for mean and scale",
                            model::projection_path(site.layer, site.projection), g));
  sites_[site] = std::move(f);
}

void WeightLora::set_group_of_sequence(const at::Tensor& group_of_sequence) {
  ++forward_;
  rows_of_group_.clear();
  start_of_group_.clear();
  rows_of_posterior_.clear();
  runs_.clear();
  block_ = 0;
  posterior_of_sequence_ = at::Tensor();
  if (!group_of_sequence.defined()) return;
  if (group_of_sequence.dim() != 1 || group_of_sequence.scalar_type() != at::kLong)
    throw Error("WeightLora: group_of_sequence must be [B] int64");
  const at::Tensor g = group_of_sequence.cpu();
  if (g.numel() > 0 && (g.min().item<int64_t>() < 0 || g.max().item<int64_t>() >= groups()))
    throw Error(fmt::format("WeightLora: a group is outside [0, {})", groups()));
  posterior_of_sequence_ = at::floor_divide(g, samples_);
  block_ = model::group_block_size(posterior_of_sequence_);
  rows_of_group_ = positions_of(g, groups());
  for (const at::Tensor& rows : rows_of_group_) start_of_group_.push_back(consecutive_start(rows));
  rows_of_posterior_ = positions_of(posterior_of_sequence_, posteriors());
  for (int64_t p = 0; p < posteriors(); ++p) {
    const at::Tensor& rows = rows_of_posterior_[static_cast<std::size_t>(p)];
    const int64_t n = rows.numel();
    if (n == 0) continue;
    const int64_t start = consecutive_start(rows);
    if (start < 0) {
      runs_.clear();
      return;
    }
    runs_.push_back({p, start, n});
  }
  std::sort(runs_.begin(), runs_.end(), [](const Run& a, const Run& b) { return a.start < b.start; });
}

namespace {

std::uint64_t site_seed_of(std::uint64_t task_seed, std::int64_t forward, const model::LinearSite& site) {
  const std::uint64_t key =
      static_cast<std::uint64_t>(site.layer) * 8 + static_cast<std::uint64_t>(site.projection) + 1;
  return mix64(mix64(task_seed ^ static_cast<std::uint64_t>(forward)) ^ mix64(key));
}

}  // namespace

std::uint64_t WeightLora::sequence_noise_key(std::uint64_t task_seed, std::int64_t sample, std::int64_t forward,
                                             const model::LinearSite& site, std::int64_t rank) {
  const std::uint64_t site_seed = site_seed_of(task_seed, forward, site);
  const std::uint64_t sample_seed = mix64(site_seed ^ mix64(static_cast<std::uint64_t>(sample)));
  return mix64(sample_seed ^ mix64(static_cast<std::uint64_t>(rank)));
}

std::vector<std::uint64_t> WeightLora::sequence_keys(const model::LinearSite& site, std::int64_t batch) const {
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(batch));
  if (rows_of_group_.empty()) {  // one group: every row is group 0's
    for (int64_t b = 0; b < batch; ++b)
      keys[static_cast<std::size_t>(b)] = sequence_noise_key(task_seeds_.front(), 0, forward_, site, b);
    return keys;
  }
  for (std::size_t k = 0; k < rows_of_group_.size(); ++k) {
    const at::Tensor rows = rows_of_group_[k].contiguous();  // increasing, on the CPU
    const int64_t* row = rows.const_data_ptr<int64_t>();
    const std::uint64_t seed = task_seeds_[k / static_cast<std::size_t>(samples_)];
    const auto sample = static_cast<std::int64_t>(k % static_cast<std::size_t>(samples_));
    for (int64_t j = 0; j < rows.numel(); ++j)
      keys[static_cast<std::size_t>(row[j])] = sequence_noise_key(seed, sample, forward_, site, j);
  }
  return keys;
}

at::Tensor WeightLora::group_noise(std::uint64_t task_seed, std::int64_t sample, std::int64_t forward,
                                   const model::LinearSite& site, std::int64_t rows, std::int64_t time,
                                   std::int64_t out, const at::TensorOptions& options) {
  const std::uint64_t site_seed = site_seed_of(task_seed, forward, site);
  std::vector<at::Tensor> chunks;  // [rows, C, O] each
  for (std::int64_t c = 0; c * kNoiseChunk < time; ++c) {
    const std::uint64_t chunk_seed =
        mix64(site_seed ^ mix64((static_cast<std::uint64_t>(sample) << 32) + static_cast<std::uint64_t>(c)));
    chunks.push_back(at::randn({rows, kNoiseChunk, out}, seeded_generator(chunk_seed, options.device()), options));
  }
  if (chunks.empty()) return at::empty({rows, 0, out}, options);
  const at::Tensor all = chunks.size() == 1 ? chunks.front() : at::cat(chunks, 1);  // [rows, C * chunks, O]
  return all.narrow(1, 0, time);
}

std::function<at::Tensor()> WeightLora::batch_noise(const model::LinearSite& site, at::IntArrayRef shape,
                                                     const at::TensorOptions& options) const {
  // Everything by value: the function outlives this forward (it runs again in backward, after the adapter may have
  // started another forward).
  return [seeds = task_seeds_, samples = samples_, forward = forward_, rows_of_group = rows_of_group_,
          start_of_group = start_of_group_, site, shape = shape.vec(), options]() {
    RECORD_USER_SCOPE("abmll::weight_lora_noise");
    const std::int64_t time = shape[1], out = shape[2];
    if (rows_of_group.empty())  // one group (checked by delta): every row is group 0's
      return group_noise(seeds.front(), 0, forward, site, shape[0], time, out, options);
    at::Tensor eps = at::empty(shape, options);
    for (std::size_t k = 0; k < rows_of_group.size(); ++k) {
      const at::Tensor& rows = rows_of_group[k];  // increasing, on the CPU
      const std::int64_t n = rows.numel();
      if (n == 0) continue;
      const at::Tensor noise =
          group_noise(seeds[k / static_cast<std::size_t>(samples)], static_cast<std::int64_t>(k) % samples, forward,
                      site, n, time, out, options);
      // Consecutive rows (episodes' layout): a plain copy, no index tensor to move to the device.
      if (const std::int64_t first = start_of_group[k]; first >= 0) {
        eps.narrow(0, first, n).copy_(noise);
      } else {
        eps.index_copy_(0, rows.to(options.device()), noise);
      }
    }
    return eps;
  };
}

at::Tensor WeightLora::delta(const at::Tensor& x, const model::LinearSite& site) const {
  const auto it = sites_.find(site);
  if (it == sites_.end()) return {};
  const WeightGaussianFactors& f = it->second;
  const int64_t in = f.a_mu.size(2), out = f.b_mu.size(1);
  if (x.dim() != 3 || x.size(2) != in)
    throw Error(fmt::format("WeightLora: {}: input [{}] does not match A [{}]",
                            model::projection_path(site.layer, site.projection), fmt::join(x.sizes(), ", "),
                            fmt::join(f.a_mu.sizes(), ", ")));
  const int64_t batch = x.size(0), time = x.size(1);
  at::Tensor posterior = posterior_of_sequence_;  // [B] int64 (CPU)
  std::vector<Run> runs = runs_;
  if (!posterior.defined()) {
    if (groups() > 1) throw Error("WeightLora: several adapter groups but group_of_sequence is unset");
    posterior = at::zeros({batch}, at::kLong);
    runs = {{0, 0, batch}};
  }
  if (posterior.size(0) != batch)
    throw Error(fmt::format("WeightLora: group_of_sequence is {} for a batch of {}", posterior.size(0), batch));
  const double s = form_.scaling;

  // Mean: each sequence's own factors, one batched matmul (as BatchedLora, for the same reasons): over posteriors
  // where their sequences are equal consecutive blocks.
  const int64_t block = posterior_of_sequence_.defined() ? block_ : batch;
  const at::Tensor mean = model::grouped_low_rank_product(x, f.a_mu, f.b_mu, s, posterior, block);  // [B, T, O]

  // Variance and sum of squares [B, T, 1]: per posterior over its sequences' tokens, so that the low-rank pieces
  // are built once per posterior rather than once per sequence. On views of the batch where posteriors hold
  // contiguous rows.
  auto variance = [&](int64_t g, const at::Tensor& xg) {  // xg [Bg, T, I]
    const WeightGaussianFactors fg{f.b_mu[g], f.a_mu[g], f.b_sigma[g], f.a_sigma[g]};
    const OutputVariance ov = output_variance(xg.reshape({xg.size(0) * time, in}), fg, form_);
    const std::vector<int64_t> shape = {xg.size(0), time, out};
    std::function<at::Tensor()> recompute;
    if (ov.recompute) recompute = [again = ov.recompute, shape] { return again().reshape(shape); };
    return OutputVariance{ov.v.reshape(shape), ov.sum_sq.reshape({xg.size(0), time, 1}), std::move(recompute)};
  };
  at::Tensor v, sum_sq;
  // v's value again in backward (so that v is not kept) where every piece can give it cheaply.
  std::function<at::Tensor()> v_again;
  if (!runs.empty()) {
    std::vector<at::Tensor> vs, sums;
    std::vector<std::function<at::Tensor()>> agains;
    for (const Run& run : runs) {
      OutputVariance piece = variance(run.posterior, x.narrow(0, run.start, run.count));
      vs.push_back(piece.v);
      sums.push_back(piece.sum_sq);
      agains.push_back(std::move(piece.recompute));
    }
    v = vs.size() == 1 ? vs.front() : at::cat(vs, 0);
    sum_sq = sums.size() == 1 ? sums.front() : at::cat(sums, 0);
    if (std::all_of(agains.begin(), agains.end(), [](const auto& a) { return static_cast<bool>(a); })) {
      v_again = [agains = std::move(agains)] {
        std::vector<at::Tensor> pieces;
        pieces.reserve(agains.size());
        for (const auto& again : agains) pieces.push_back(again());
        return pieces.size() == 1 ? pieces.front() : at::cat(pieces, 0);
      };
    }
  } else {
    v = at::zeros({batch, time, out}, mean.options());
    sum_sq = at::zeros({batch, time, 1}, mean.options());
    for (int64_t g = 0; g < posteriors(); ++g) {
      const at::Tensor& rows = rows_of_posterior_[static_cast<std::size_t>(g)];
      if (rows.numel() == 0) continue;
      const at::Tensor rows_here = rows.to(x.device());
      const OutputVariance piece = variance(g, x.index_select(0, rows_here));
      v.index_copy_(0, rows_here, piece.v);
      sum_sq.index_copy_(0, rows_here, piece.sum_sq);
    }
  }
  // v >= c^2 sum_i x_i^2 whenever every S^2 >= c^2; the bound also keeps sqrt's gradient finite where the low-rank
  // expansion rounds to 0 or below (and 1e-30 where x = 0).
  const at::Tensor bound = (form_.floor * form_.floor) * sum_sq + 1e-30;
  // Counter-based noise on a GPU (drawn inside the fused kernels), per-group draws on the CPU or without the kernels.
  if (counter_noise_ || (x.is_cuda() && cuda_kernels_enabled()))
    return noisy_output(mean, v, bound, {}, std::move(v_again), x.scalar_type(), sequence_keys(site, batch));
  return noisy_output(mean, v, bound, batch_noise(site, {batch, time, out}, mean.options()), std::move(v_again),
                      x.scalar_type());
}

std::vector<at::Tensor> WeightLora::trainable_tensors() const {
  std::vector<at::Tensor> out;
  for (const auto& [site, f] : sites_)
    for (const at::Tensor* t : {&f.b_mu, &f.a_mu, &f.b_sigma, &f.a_sigma})
      if (t->requires_grad()) out.push_back(*t);
  return out;
}

}  // namespace abmll::meta
