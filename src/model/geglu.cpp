// GeGLU's gating as one autograd function (see geglu.h).
#include "model/geglu.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/gelu_backward.h>
#include <torch/csrc/autograd/custom_function.h>

#include <string>

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Geglu : public torch::autograd::Function<Geglu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up, bool tanh) {
    ctx->save_for_backward({gate, up});
    ctx->saved_data["tanh"] = tanh;
    return at::gelu(gate, tanh ? "tanh" : "none") * up;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const std::string approximate = ctx->saved_data["tanh"].toBool() ? "tanh" : "none";
    const at::Tensor& g = grad_outputs[0];
    at::Tensor g_gate, g_up;
    // g_gate = gelu'(gate) (g up) and g_up = gelu(gate) g, rounded where the chain's MulBackward and GeluBackward
    // round. First order: in place, so that besides g at most two [N, F] tensors are alive at once. Differentiated
    // again (second order): out of place, gelu_backward having a derivative of its own.
    const bool twice = at::GradMode::is_enabled();
    if (ctx->needs_input_grad(0)) {
      if (twice) {
        g_gate = at::gelu_backward(g * up, gate, approximate);
      } else {
        g_gate = g * up;
        at::gelu_backward_out(g_gate, g_gate, gate, approximate);
      }
    }
    if (ctx->needs_input_grad(1))
      g_up = twice ? g * at::gelu(gate, approximate) : at::gelu(gate, approximate).mul_(g);
    return {g_gate, g_up, at::Tensor()};
  }
};

}  // namespace

at::Tensor geglu(const at::Tensor& gate, const at::Tensor& up, bool tanh_approximation) {
  return Geglu::apply(gate, up, tanh_approximation);
}

}  // namespace abmll::model
