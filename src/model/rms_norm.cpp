// RMSNorm (see rms_norm.h).
#include "model/rms_norm.h"

#include <ATen/ExpandUtils.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/_fused_rms_norm.h>
#include <ATen/ops/_fused_rms_norm_backward.h>
#include <ATen/ops/rsqrt.h>
#include <torch/csrc/autograd/custom_function.h>

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// x in at least float32 (float64 stays float64).
at::Tensor widened(const at::Tensor& x) { return x.to(at::promote_types(x.scalar_type(), at::kFloat)); }

// 1 / sqrt(mean(h^2) + eps) [..., 1] float32 (float64 for float64) from the widened input.
at::Tensor rstd_of(const at::Tensor& h, double eps) { return at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps); }

// On a GPU, ATen's fused kernels: one pass over [N, D] forward and one backward, where the composed ops make about
// eight (the forward's and backward's float32 copies, squares, products and casts); at the Llama-3-8B width and 8192
// tokens, about 2.8 GB of memory traffic less per call, forward and backward.
bool fused_applies(const at::Tensor& x) {
  const at::ScalarType t = x.scalar_type();
  return x.is_cuda() && (t == at::kFloat || t == at::kBFloat16 || t == at::kHalf);
}

// Keeps x as given (a bfloat16 model's activation), the weight, and on a GPU the fused kernel's reciprocal root
// ([..., 1] float32); backward recomputes the float32 copy (and the root on the CPU) from x, which also makes it
// differentiable in x for second-order meta-gradients.
struct RmsNorm : public torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps,
                            bool scale_before_rounding) {
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["scale_before_rounding"] = scale_before_rounding;
    if (scale_before_rounding) {
      ctx->save_for_backward({x, weight, at::Tensor()});
      const at::Tensor h = widened(x);
      return (h * rstd_of(h, eps) * weight).to(x.scalar_type());
    }
    if (fused_applies(x)) {
      // Normalised in float32 and rounded to x's dtype, then multiplied by the weight in that dtype: the reference's
      // rounding (the kernel's weight would be applied before rounding).
      auto [n, rstd] = at::_fused_rms_norm(x, {x.size(-1)}, std::nullopt, eps);
      ctx->save_for_backward({x, weight, rstd});
      return weight * n;
    }
    ctx->save_for_backward({x, weight, at::Tensor()});
    const at::Tensor h = widened(x);
    return weight * (h * rstd_of(h, eps)).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &fused_rstd = saved[2];
    const double eps = ctx->saved_data["eps"].toDouble();
    const bool scale_before_rounding = ctx->saved_data["scale_before_rounding"].toBool();
    const at::Tensor& g = grad_outputs[0];
    const bool twice = at::GradMode::is_enabled();  // differentiated again (second order)
    at::Tensor g_x, g_weight;
    if (ctx->needs_input_grad(0)) {
      // Through weight * n (rounded to x's dtype, as the chain's MulBackward; Gemma's order: in the weight's wider
      // dtype), n = h rstd, rstd = (mean(h^2) + eps)^(-1/2): dh = rstd g_n - h rstd^3 mean(g_n h).
      const at::Tensor g_n =
          scale_before_rounding ? g.to(weight.scalar_type()) * weight : (g * weight).to(x.scalar_type());
      if (fused_rstd.defined() && !twice) {
        g_x = std::get<0>(at::_fused_rms_norm_backward(g_n, x, {x.size(-1)}, fused_rstd, std::nullopt, {true, false}));
      } else {
        const at::Tensor h = widened(x), rstd = rstd_of(h, eps);
        at::Tensor g_nh = g_n.to(h.scalar_type());  // a fresh tensor
        if (twice) {  // out of place
          g_x = (rstd * g_nh - h * (rstd.pow(3) * (g_nh * h).mean(-1, /*keepdim=*/true))).to(x.scalar_type());
        } else {
          // In place, so that this backward, whose transient float32 [N, D] tensors can make the step's peak,
          // holds three of them at most (h, g_n, and g_n h until reduced).
          const at::Tensor c = (g_nh * h).mean(-1, /*keepdim=*/true).mul_(rstd.pow(3));  // [..., 1]
          g_x = g_nh.mul_(rstd).addcmul_(h, c, -1).to(x.scalar_type());
        }
      }
    }
    if (ctx->needs_input_grad(1)) {
      const at::Tensor h = widened(x);
      const at::Tensor rstd = fused_rstd.defined() && !twice ? fused_rstd : rstd_of(h, eps);
      const at::Tensor n = scale_before_rounding ? h * rstd : (h * rstd).to(x.scalar_type());
      g_weight = at::sum_to(g.to(n.scalar_type()) * n, weight.sizes()).to(weight.scalar_type());
    }
    return {g_x, g_weight, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, bool scale_before_rounding) {
  return RmsNorm::apply(x, weight, eps, scale_before_rounding);
}

}  // namespace abmll::model
