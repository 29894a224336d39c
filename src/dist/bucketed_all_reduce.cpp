#include "dist/bucketed_all_reduce.h"

#include <ATen/ops/cat.h>

#include <fmt/format.h>

namespace abmll::dist {

std::vector<std::vector<std::size_t>> plan_buckets(const std::vector<at::Tensor>& tensors,
                                                   std::int64_t bucket_bytes) {
  std::vector<std::vector<std::size_t>> buckets;
  std::int64_t filled = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    const std::int64_t bytes = t.numel() * static_cast<std::int64_t>(t.element_size());
    const bool fits = !buckets.empty() && filled + bytes <= bucket_bytes &&
                      tensors[buckets.back().front()].scalar_type() == t.scalar_type() &&
                      tensors[buckets.back().front()].device() == t.device();
    if (!fits) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(i);
    filled += bytes;
  }
  return buckets;
}

void all_reduce_weighted_sum(ProcessGroup& group, std::vector<at::Tensor>& tensors, double weight,
                             std::int64_t bucket_bytes, const std::string& what) {
  const auto buckets = plan_buckets(tensors, bucket_bytes);
  std::vector<at::Tensor> flat;  // one [n] tensor per bucket: its tensors, flattened and concatenated, times weight
  flat.reserve(buckets.size());
  for (const auto& bucket : buckets) {
    std::vector<at::Tensor> parts;
    parts.reserve(bucket.size());
    for (std::size_t i : bucket) parts.push_back(tensors[i].detach().reshape({-1}));
    flat.push_back(at::cat(parts).mul_(weight));
  }
  const std::string plural = flat.size() == 1 ? "" : "s";
  group.all_reduce(flat, ReduceOp::sum, fmt::format("{} ({} bucket{})", what, flat.size(), plural));
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    std::int64_t offset = 0;
    for (std::size_t i : buckets[b]) {
      at::Tensor& t = tensors[i];
      t = flat[b].narrow(0, offset, t.numel()).view(t.sizes());
      offset += t.numel();
    }
  }
}

}  // namespace abmll::dist
