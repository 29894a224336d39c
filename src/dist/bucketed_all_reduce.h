// The data-parallel sum of a list of tensors (theta's gradients): each rank scales its tensors by its weight, the
// tensors are flattened into buckets of at most `bucket_bytes` (one collective per bucket instead of one per tensor:
// theta has 4 tensors per adapted layer, 896 for Llama-3-8B with q,k,v,o on 32 layers), all buckets are in flight
// at once, and the sums are copied back. Afterwards every rank holds sum_r weight_r * tensors_r, bit for bit the
// same on every rank.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dist/process_group.h"

namespace abmll::dist {

inline constexpr std::int64_t kDefaultBucketBytes = 25 << 20;  // as torch's DistributedDataParallel

// Tensors grouped into buckets: consecutive runs of one dtype and device, each at most `bucket_bytes` (a tensor
// larger than that gets a bucket of its own). Returns each bucket's tensor indices.
std::vector<std::vector<std::size_t>> plan_buckets(const std::vector<at::Tensor>& tensors, std::int64_t bucket_bytes);

// tensors[i] <- sum over ranks of weight * tensors[i] (replaced by views into the reduced buckets).
void all_reduce_weighted_sum(ProcessGroup& group, std::vector<at::Tensor>& tensors, double weight,
                             std::int64_t bucket_bytes, const std::string& what);

}  // namespace abmll::dist
