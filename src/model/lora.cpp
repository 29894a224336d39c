// Batched LoRA (see lora.h).
#include "model/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/zeros.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "model/low_rank_product.h"
#include "util/error.h"

namespace abmll::model {
namespace {

// splitmix64's finaliser: a well-mixed 64-bit hash, so nearby (seed, site) pairs give unrelated streams.
uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string site_name(const LinearSite& site) { return projection_path(site.layer, site.projection); }

}  // namespace

std::vector<LinearSite> lora_sites(const ModelConfig& config, const LoraSettings& settings) {
  std::vector<LinearSite> out;
  for (int64_t layer = 0; layer < config.num_layers; ++layer)
    for (Projection p : settings.targets)
      if (layer_has_projection(config, layer, p)) out.push_back({layer, p});
  return out;
}

BatchedLora::BatchedLora(LoraSettings settings, int64_t groups) : settings_(std::move(settings)), groups_(groups) {
  settings_.validate();
  if (groups_ < 1) throw Error(fmt::format("BatchedLora: {} adapter groups", groups_));
}

BatchedLora BatchedLora::zeros_b(const ModelConfig& config, LoraSettings settings, int64_t groups, double init_std,
                                 at::ScalarType dtype, at::Device device) {
  BatchedLora lora(std::move(settings), groups);
  const auto options = at::TensorOptions().dtype(dtype).device(device);
  const int64_t r = lora.settings_.rank;
  for (const LinearSite& site : lora_sites(config, lora.settings_)) {
    const auto shape = projection_shape(config, site.projection);  // [out, in]
    lora.set_factors(site, {at::randn({groups, r, shape[1]}, options) * init_std,
                            at::zeros({groups, shape[0], r}, options)});
  }
  return lora;
}

void BatchedLora::set_factors(const LinearSite& site, LoraFactors f) {
  const std::string name = site_name(site);
  if (settings_.targets.count(site.projection) == 0)
    throw Error(fmt::format("BatchedLora: {} is not a target ({})", name,
                            fmt::join(lora_target_names(settings_.targets), ", ")));
  const int64_t r = settings_.rank;
  if (!f.a.defined() || !f.b.defined() || f.a.dim() != 3 || f.b.dim() != 3 || f.a.size(0) != groups_ ||
      f.b.size(0) != groups_ || f.a.size(1) != r || f.b.size(2) != r)
    throw Error(fmt::format("BatchedLora: {}: factors must be A [G={}, r={}, in] and B [G, out, r], got A [{}], B [{}]",
                            name, groups_, r, fmt::join(f.a.sizes(), ", "), fmt::join(f.b.sizes(), ", ")));
  if (!at::isFloatingType(f.a.scalar_type()) || f.a.scalar_type() != f.b.scalar_type() ||
      f.a.device() != f.b.device())
    throw Error(fmt::format("BatchedLora: {}: A and B must share one floating dtype and device, got {} and {}", name,
                            c10::toString(f.a.scalar_type()), c10::toString(f.b.scalar_type())));
  factors_[site] = std::move(f);
}

const LoraFactors* BatchedLora::factors(const LinearSite& site) const {
  auto it = factors_.find(site);
  return it == factors_.end() ? nullptr : &it->second;
}

void BatchedLora::set_group_of_sequence(const at::Tensor& group_of_sequence) {
  if (group_of_sequence.defined()) {
    if (group_of_sequence.dim() != 1 || group_of_sequence.scalar_type() != at::kLong)
      throw Error("BatchedLora: group_of_sequence must be [B] int64");
    if (group_of_sequence.numel() > 0) {
      // Read in place where it lies on the CPU (one forward sets it; two reductions and reads cost more than it).
      int64_t lo = 0, hi = 0;
      if (group_of_sequence.is_cpu() && group_of_sequence.is_contiguous()) {
        const int64_t* g = group_of_sequence.const_data_ptr<int64_t>();
        const auto [min, max] = std::minmax_element(g, g + group_of_sequence.numel());
        lo = *min, hi = *max;
      } else {
        lo = group_of_sequence.min().item<int64_t>(), hi = group_of_sequence.max().item<int64_t>();
      }
      if (lo < 0 || hi >= groups_)
        throw Error(fmt::format("BatchedLora: group {} is outside [0, {})", lo < 0 ? lo : hi, groups_));
    }
  }
  group_of_sequence_ = group_of_sequence;
  block_ = group_of_sequence.defined() ? group_block_size(group_of_sequence) : 0;
}

void BatchedLora::set_training(bool training, uint64_t seed) {
  training_ = training;
  seed_ = seed;
}

at::Tensor BatchedLora::dropout(const at::Tensor& x, const LinearSite& site) const {
  const double p = settings_.dropout;
  if (!training_ || p == 0) return x;
  const uint64_t key = static_cast<uint64_t>(site.layer) * 8 + static_cast<uint64_t>(site.projection) + 1;
  const uint64_t seed = mix64(seed_ ^ mix64(key));
  at::Generator gen;
  if (x.device().is_cpu()) {
    gen = at::detail::createCPUGenerator(seed);
  } else {
    gen = at::globalContext().defaultGenerator(x.device()).clone();
    gen.set_current_seed(seed);
  }
  at::Tensor keep = at::empty_like(x).bernoulli_(1.0 - p, gen);
  return x * keep * (1.0 / (1.0 - p));
}

at::Tensor BatchedLora::delta(const at::Tensor& x, const LinearSite& site) const {
  const LoraFactors* f = factors(site);
  if (f == nullptr) return {};
  const int64_t batch = x.size(0);
  if (x.dim() != 3 || x.size(2) != f->a.size(2))
    throw Error(fmt::format("BatchedLora: {}: input [{}] does not match A [{}]", site_name(site),
                            fmt::join(x.sizes(), ", "), fmt::join(f->a.sizes(), ", ")));
  const double s = settings_.scale();
  if (groups_ > 1 && (!group_of_sequence_.defined() || group_of_sequence_.size(0) != batch))
    throw Error(fmt::format("BatchedLora: {} groups but group_of_sequence is {} for a batch of {}", groups_,
                            group_of_sequence_.defined() ? std::to_string(group_of_sequence_.size(0)) : "unset",
                            batch));
  // Each sequence's own factors in one batched matmul: over groups where each group's sequences are consecutive
  // blocks of one size (as episodes lay them out), otherwise over sequences with the factors gathered per sequence.
  // Gathering copies B r (in + out) numbers, far fewer than the activations (B T in); the alternative, gathering
  // each group's sequences, multiplying per group and scattering back, copies the activations twice and runs G
  // small GEMMs. Measured on CPU (2 threads; B x T = 8x256, 16x128, 4x512, 16x64; r 8..16; in/out 768..2048; G
  // 4..16): bmm was faster in every case, 5x or more in forward and 1.2-4x in forward + backward.
  at::Tensor out;
  if (!training_ || settings_.dropout == 0) {
    // x is kept as it is for backward (the frozen projection keeps it too), not as a float32 copy.
    out = grouped_low_rank_product(x, f->a, f->b, s, group_of_sequence_,
                                   groups_ > 1 ? block_ : batch);  // one group: one block
  } else {
    // PEFT's order: cast to the adapter's dtype, then dropout.
    const at::Tensor g = groups_ > 1 ? group_of_sequence_.to(x.device()) : at::Tensor();
    const at::Tensor a = groups_ > 1 ? f->a.index_select(0, g) : f->a;  // [B, r, in] or [1, r, in]
    const at::Tensor b = groups_ > 1 ? f->b.index_select(0, g) : f->b;  // [B, out, r] or [1, out, r]
    const at::Tensor xa = dropout(x.to(f->a.scalar_type()), site);  // [B, T, in]
    out = groups_ > 1 ? at::bmm(at::bmm(xa, a.transpose(1, 2)) * s, b.transpose(1, 2))  // [B, T, out]
                      : at::matmul(at::matmul(xa, a[0].t()) * s, b[0].t());
  }
  return out.to(x.scalar_type());
}

std::vector<at::Tensor> BatchedLora::trainable_tensors() const {
  std::vector<at::Tensor> out;
  for (const auto& [site, f] : factors_) {
    if (f.a.requires_grad()) out.push_back(f.a);
    if (f.b.requires_grad()) out.push_back(f.b);
  }
  return out;
}

}  // namespace abmll::model
