// xIELU (Apertus's MLP activation, arXiv:2411.13010), with its learned per-layer parameters, as one autograd
// function that keeps only its input for backward (as ATen ops it would also keep alpha_p x, the expm1 and two
// masks: at Apertus-8B's F = 21504, 44 MB per 1024 bf16 tokens and layer each). The forward is transformers' chain of
// ops (XIELUActivation's Python path) in the input's dtype, so values match it in every dtype; backward evaluates the
// derivative from the input, and is itself differentiable (second-order meta-gradients). ATen's kernels on every
// device.
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::model {

// A layer's stored parameters (mlp.act_fn.*), in the model's dtype: alpha_p and alpha_n [1] through softplus (the
// positive and negative slopes are softplus(alpha_p) and beta + softplus(alpha_n)), beta and eps scalars [].
struct XieluWeights {
  at::Tensor alpha_p, alpha_n, beta, eps;
};

// x [..., F] ->
//   a_p x^2 + beta x                                  where x > 0,
//   (expm1(min(x, eps)) - x) a_n + beta x             elsewhere,
// with a_p = softplus(alpha_p), a_n = beta + softplus(alpha_n). The parameters get no gradient (the base is frozen).
at::Tensor xielu(const at::Tensor& x, const XieluWeights& w);

}  // namespace abmll::model
