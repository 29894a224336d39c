// The weight-space KL on a GPU: tensors in, tensors out, over the fused kernels of cuda/weight_kl.cu. The ATen
// implementation (weight_gaussian.cpp) is the reference and the fallback: weight_space_kl dispatches here for
// float32 CUDA tensors when abmll is built with CUDA, and uses ATen otherwise (CPU, float64, a build without
// cuda/, or a differentiable backward, which the fused backward is not).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

#include "meta/weight_gaussian.h"

namespace abmll::meta {

// Whether the fused kernels were built in, and whether they take these factors (non-empty float32 matrices on a CUDA
// device, rank at most 256, at most 524280 output rows).
bool weight_kl_cuda_built();
bool weight_kl_cuda_applies(const WeightGaussianFactors& q);

// KL(q || p) summed, a 0-dim float32 tensor on the factors' device; `floor_hits` as weight_space_kl's. Throws
// abmll::Error when the kernels are not built in or do not apply.
at::Tensor weight_kl_cuda_forward(const WeightGaussianFactors& q, const WeightGaussianFactors& p,
                                  const WeightScaleForm& form, at::Tensor* floor_hits);

// The KL (as weight_kl_cuda_forward) and its gradients with respect to the `needed` factors in one pass of the
// kernels over the entries. Not differentiable.
WeightKlValueAndGradients weight_kl_cuda_value_and_gradients(const WeightGaussianFactors& q,
                                                             const WeightGaussianFactors& p,
                                                             const WeightScaleForm& form, const WeightKlNeeded& needed,
                                                             at::Tensor* floor_hits);

}  // namespace abmll::meta
