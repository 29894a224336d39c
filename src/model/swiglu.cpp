// SwiGLU's gating as one autograd function (see swiglu.h).
#include "model/swiglu.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/silu_backward.h>
#include <torch/csrc/autograd/custom_function.h>

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Swiglu : public torch::autograd::Function<Swiglu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    ctx->save_for_backward({gate, up});
    return at::silu(gate) * up;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const at::Tensor& g = grad_outputs[0];
    at::Tensor g_gate, g_up;
    // g_gate = silu'(gate) (g up) and g_up = silu(gate) g, rounded where the chain's MulBackward and SiluBackward
    // round. First order: in place, so that besides g at most two [N, F] tensors are alive at once (this backward's
    // transients can make the step's peak). Differentiated again (second order): silu_backward has no derivative
    // of its own, so silu's derivative s (1 + gate (1 - s)), s = sigmoid(gate), as differentiable ops, as ATen's
    // silu does then.
    const bool twice = at::GradMode::is_enabled();
    if (ctx->needs_input_grad(0)) {
      if (twice) {
        const at::Tensor s = at::sigmoid(gate);
        g_gate = g * up * (s * (1 + gate * (1 - s)));
      } else {
        g_gate = g * up;
        at::silu_backward_out(g_gate, g_gate, gate);
      }
    }
    if (ctx->needs_input_grad(1)) g_up = twice ? g * at::silu(gate) : at::silu(gate).mul_(g);
    return {g_gate, g_up};
  }
};

}  // namespace

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) { return Swiglu::apply(gate, up); }

}  // namespace abmll::model
