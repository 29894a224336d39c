// xIELU as one autograd function (see xielu.h).
#include "model/xielu.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/exp.h>
#include <ATen/ops/expm1.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/softplus.h>
#include <ATen/ops/where.h>
#include <torch/csrc/autograd/custom_function.h>

#include <utility>

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The two slopes, [1] each, as XIELUActivation computes them (in the parameters' dtype).
std::pair<at::Tensor, at::Tensor> slopes(const at::Tensor& alpha_p, const at::Tensor& alpha_n,
                                         const at::Tensor& beta) {
  return {at::softplus(alpha_p), beta + at::softplus(alpha_n)};
}

struct Xielu : public torch::autograd::Function<Xielu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& alpha_p,
                            const at::Tensor& alpha_n, const at::Tensor& beta, const at::Tensor& eps) {
    ctx->save_for_backward({x, alpha_p, alpha_n, beta, eps});
    const auto [a_p, a_n] = slopes(alpha_p, alpha_n, beta);
    // In transformers' order, each product rounded where its chain rounds (beta x, which its two branches compute
    // alike, once).
    const at::Tensor beta_x = beta * x;
    return at::where(x > 0, a_p * x * x + beta_x, (at::expm1(at::minimum(x, eps)) - x) * a_n + beta_x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &beta = saved[3], &eps = saved[4];
    const auto [a_p, a_n] = slopes(saved[1], saved[2], beta);
    // d/dx: 2 a_p x + beta where x > 0; a_n (exp(x) [x < eps] - 1) + beta elsewhere (at x == eps, ATen's minimum
    // passes half of the gradient to each side, and so does this). As ops of x, so that a second derivative follows
    // when the first is taken with create_graph.
    const at::Tensor below = (x < eps).to(x.scalar_type()) + (x == eps).to(x.scalar_type()) * 0.5;
    const at::Tensor negative = a_n * (at::exp(at::minimum(x, eps)) * below - 1) + beta;
    const at::Tensor derivative = at::where(x > 0, 2 * a_p * x + beta, negative);
    return {grad_outputs[0] * derivative, {}, {}, {}, {}};
  }
};

}  // namespace

at::Tensor xielu(const at::Tensor& x, const XieluWeights& w) {
  return Xielu::apply(x, w.alpha_p, w.alpha_n, w.beta, w.eps);
}

}  // namespace abmll::model
