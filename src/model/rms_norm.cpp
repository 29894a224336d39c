// RMSNorm (see rms_norm.h).
#include "model/rms_norm.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/rsqrt.h>

namespace abmll::model {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const auto input_dtype = x.scalar_type();
  // At least float32, as transformers; float64 stays float64 (gradient checks by finite differences need it).
  at::Tensor h = x.to(at::promote_types(input_dtype, at::kFloat));
  at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + eps);
  return weight * h.to(input_dtype);
}

}  // namespace abmll::model
