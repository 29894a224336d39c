// The weight-space KL on the CPU with one fused loop per tile: the tile's means and scale pre-activations come from
// four GEMMs as in the ATen implementation (weight_gaussian.cpp, the reference), then every entry's KL, and for a KL
// that will be differentiated its three gradients too, is computed in one pass (weight_kl_entry.h, the arithmetic
// the CUDA kernels share) instead of some thirty elementwise ATen ops each reading and writing the whole tile.
// float32 only; not differentiable (a backward that builds a graph, for second-order meta-gradients, takes ATen's).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

#include "meta/weight_gaussian.h"

namespace abmll::meta {

// Whether the loop takes these factors (float32 on the CPU).
bool weight_kl_cpu_applies(const WeightGaussianFactors& q);

// KL(q || p) summed (a 0-dim float32 tensor; accumulated in double), in tiles of `tile_rows` output rows;
// `floor_hits` as weight_space_kl's.
at::Tensor weight_kl_cpu_forward(const WeightGaussianFactors& q, const WeightGaussianFactors& p,
                                 const WeightScaleForm& form, std::int64_t tile_rows, std::int64_t* floor_hits);

// The KL (as weight_kl_cpu_forward) and its gradients with respect to the `needed` factors in one pass over the
// tiles: for a KL that will be differentiated, instead of a forward pass and a backward pass that forms every entry
// again.
WeightKlValueAndGradients weight_kl_cpu_value_and_gradients(const WeightGaussianFactors& q,
                                                            const WeightGaussianFactors& p, const WeightScaleForm& form,
                                                            std::int64_t tile_rows, const WeightKlNeeded& needed,
                                                            std::int64_t* floor_hits);

}  // namespace abmll::meta
