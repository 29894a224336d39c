// LayerNorm without bias, and the model's choice of norm (see layer_norm.h).
#include "model/layer_norm.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/mean.h>
#include <ATen/ops/rsqrt.h>

#include "model/rms_norm.h"

namespace abmll::model {

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::ScalarType wide = at::promote_types(x.scalar_type(), at::kFloat);
  const at::Tensor h = x.to(wide);
  const at::Tensor centred = h - h.mean(-1, /*keepdim=*/true);
  const at::Tensor variance = centred.pow(2).mean(-1, /*keepdim=*/true);
  return (weight.to(wide) * (centred * at::rsqrt(variance + eps))).to(x.scalar_type());
}

at::Tensor model_norm(const at::Tensor& x, const at::Tensor& weight, const ModelConfig& config) {
  return config.layer_norms ? layer_norm(x, weight, config.rms_norm_eps)
                            : rms_norm(x, weight, config.rms_norm_eps, config.norms_scale_in_float32);
}

}  // namespace abmll::model
