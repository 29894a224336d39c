// Cohere's LayerNorm (CohereLayerNorm): no bias, in float32 throughout: (x - mean) / sqrt(var + eps) times the
// weight, rounded to x's dtype once. And the choice between it and RMSNorm that a model's config makes.
#pragma once

#include <ATen/core/Tensor.h>

#include "model/model_config.h"

namespace abmll::model {

// x [..., D], weight broadcastable to [..., D] ([D]; a per-head query or key norm's [H, Dh] on [..., H, Dh]) ->
// x's shape and dtype. Composed ATen ops (differentiable twice); float64 stays float64.
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// The model's norm of x: layer_norm for config.layer_norms (Cohere), else rms_norm rounding as the config says.
at::Tensor model_norm(const at::Tensor& x, const at::Tensor& weight, const ModelConfig& config);

}  // namespace abmll::model
