// RMSNorm (see rms_norm.h).
#include "model/rms_norm.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/rsqrt.h>
#include <ATen/ExpandUtils.h>
#include <torch/csrc/autograd/custom_function.h>

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// x in at least float32 (float64 stays float64), and 1 / sqrt(mean(x^2) + eps) [..., 1].
std::pair<at::Tensor, at::Tensor> widened_and_rstd(const at::Tensor& x, double eps) {
  at::Tensor h = x.to(at::promote_types(x.scalar_type(), at::kFloat));
  at::Tensor rstd = at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return {std::move(h), std::move(rstd)};
}

// Keeps x as given (a bfloat16 model's activation) and the weight; backward recomputes the float32 copy and the
// reciprocal root from x, which also makes it differentiable in x for second-order meta-gradients.
struct RmsNorm : public torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["eps"] = eps;
    const auto [h, rstd] = widened_and_rstd(x, eps);
    return weight * (h * rstd).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1];
    const auto [h, rstd] = widened_and_rstd(x, ctx->saved_data["eps"].toDouble());
    const at::Tensor& g = grad_outputs[0];
    at::Tensor g_x, g_weight;
    if (ctx->needs_input_grad(0)) {
      // Through weight * n (rounded to x's dtype, as the chain's MulBackward), n = h rstd, rstd = (mean(h^2) +
      // eps)^(-1/2): dh = rstd g_n - h rstd^3 mean(g_n h).
      at::Tensor g_n = (g * weight).to(x.scalar_type()).to(h.scalar_type());  // a fresh tensor
      if (at::GradMode::is_enabled()) {  // differentiated again: out of place
        g_x = (rstd * g_n - h * (rstd.pow(3) * (g_n * h).mean(-1, /*keepdim=*/true))).to(x.scalar_type());
      } else {
        // In place, so that this backward, whose transient float32 [N, D] tensors can make the step's peak, holds
        // three of them at most (h, g_n, and g_n h until reduced).
        const at::Tensor c = (g_n * h).mean(-1, /*keepdim=*/true).mul_(rstd.pow(3));  // [..., 1]
        g_x = g_n.mul_(rstd).addcmul_(h, c, -1).to(x.scalar_type());
      }
    }
    if (ctx->needs_input_grad(1))
      g_weight = at::sum_to(g * (h * rstd).to(x.scalar_type()), weight.sizes()).to(weight.scalar_type());
    return {g_x, g_weight, at::Tensor()};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNorm::apply(x, weight, eps);
}

}  // namespace abmll::model
