// Memory-lean autograd functions of the local reparameterisation (see reparam_ops.h).
#include "meta/reparam_ops.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/index_add.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/sqrt.h>
#include <ATen/ops/square.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include "meta/noisy_output_fused.h"
#include "meta/squared_input.h"
#include "util/error.h"

namespace abmll::meta {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// x^2 in m's dtype: one fused pass where it applies (squared_input.h), else the chain.
at::Tensor squared_as(const at::Tensor& x, const at::Tensor& m) {
  return squared_input_fused_applies(x, m.scalar_type()) ? squared_input(x) : at::square(x.to(m.scalar_type()));
}

struct SquaredMatmul : public torch::autograd::Function<SquaredMatmul> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& m) {
    ctx->save_for_backward({x, m});
    return at::matmul(squared_as(x, m), m);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &m = saved[1];
    const at::Tensor& g = grad_outputs[0];  // [N, K]
    // First order: x^2 and 2 x (g m^T) each one pass (squared_input.h). Differentiated again: the chain below.
    if (!at::GradMode::is_enabled() && squared_input_fused_applies(x, m.scalar_type())) {
      at::Tensor g_x, g_m;
      if (ctx->needs_input_grad(0)) g_x = squared_input_gradient(x, at::matmul(g, m.t()));
      if (ctx->needs_input_grad(1)) g_m = at::matmul(squared_input(x).t(), g);
      return {g_x, g_m};
    }
    const at::Tensor xc = x.to(m.scalar_type());
    at::Tensor g_x, g_m;
    if (ctx->needs_input_grad(0)) g_x = (2 * xc * at::matmul(g, m.t())).to(x.scalar_type());
    if (ctx->needs_input_grad(1)) g_m = at::matmul(at::square(xc).t(), g);
    return {g_x, g_m};
  }
};

// What gives the noise and (optionally) the variance again in backward, kept in the node's saved data: a function
// that draws the noise tensor, or the sequences' keys of counter-based noise.
struct Recomputed : torch::CustomClassHolder {
  std::function<at::Tensor()> noise, variance;
  std::vector<std::uint64_t> sequence_keys;

  // For the fused pass: the keys, or the drawn tensor.
  OutputNoise fused_noise() const {
    return sequence_keys.empty() ? OutputNoise{noise(), {}} : OutputNoise{{}, sequence_keys};
  }
  // As a tensor [B, T, O] like `like`.
  at::Tensor tensor(const OutputNoise& fused, const at::Tensor& like) const {
    return fused.sequence_keys.empty() ? fused.tensor
                                       : counter_noise_tensor(fused.sequence_keys, like.size(1), like.size(2),
                                                              like.device()).to(like.scalar_type());
  }
};

struct NoisyOutput : public torch::autograd::Function<NoisyOutput> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& mean, const at::Tensor& v,
                            const at::Tensor& bound, const c10::intrusive_ptr<Recomputed>& recomputed,
                            at::ScalarType out) {
    ctx->save_for_backward({recomputed->variance ? at::Tensor() : v, bound});
    ctx->saved_data["recomputed"] = c10::IValue::make_capsule(recomputed);
    ctx->saved_data["mean_dtype"] = static_cast<int64_t>(mean.scalar_type());
    const OutputNoise noise = recomputed->fused_noise();
    if (noisy_output_fused_applies(mean, v, bound, noise, out))
      return noisy_output_fused_forward(mean, v, bound, noise, out);
    return (mean + at::sqrt(at::maximum(v, bound)) * recomputed->tensor(noise, mean)).to(out);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& bound = saved[1];
    const auto recomputed =
        c10::static_intrusive_pointer_cast<Recomputed>(ctx->saved_data["recomputed"].toCapsule());
    const at::Tensor v = recomputed->variance ? recomputed->variance() : saved[0];
    const OutputNoise fused = recomputed->fused_noise();
    const auto mean_dtype = static_cast<at::ScalarType>(ctx->saved_data["mean_dtype"].toInt());
    // Differentiated again (second order): the reference chain, whose backward is a graph.
    const bool twice = at::GradMode::is_enabled();
    const at::Tensor& g_out = grad_outputs[0];
    if (!twice && mean_dtype == at::kFloat && noisy_output_fused_applies(v, v, bound, fused, g_out.scalar_type())) {
      NoisyOutputGradients d = noisy_output_fused_backward(g_out, v, bound, fused);
      return {d.mean, d.v, d.bound, at::Tensor(), at::Tensor()};
    }
    const at::Tensor g = g_out.to(mean_dtype);
    const at::Tensor noise = recomputed->tensor(fused, v);
    // d/d max(v, bound) of sqrt(.) * noise, then maximum's split: all to the larger, half each on a tie.
    const at::Tensor g_max = g * noise * 0.5 / at::sqrt(at::maximum(v, bound));
    const at::Tensor to_v = at::where(v > bound, 1.0, at::where(v == bound, 0.5, 0.0)).to(g_max.scalar_type());
    const at::Tensor g_v = g_max * to_v;
    const at::Tensor g_bound = (g_max - g_v).sum(-1, /*keepdim=*/true);
    return {g, g_v, g_bound, at::Tensor(), at::Tensor()};
  }
};

struct PairProducts : public torch::autograd::Function<PairProducts> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& rows, const at::Tensor& first,
                            const at::Tensor& second) {
    ctx->save_for_backward({rows, first, second});
    return rows.index_select(0, first) * rows.index_select(0, second);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &rows = saved[0], &first = saved[1], &second = saved[2];
    const at::Tensor& g = grad_outputs[0];  // [P, X]
    const at::Tensor g_rows = at::zeros_like(rows)
                                  .index_add(0, first, g * rows.index_select(0, second))
                                  .index_add(0, second, g * rows.index_select(0, first));
    return {g_rows, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor pair_products(const at::Tensor& rows, const at::Tensor& first, const at::Tensor& second) {
  return PairProducts::apply(rows, first, second);
}

at::Tensor squared_matmul(const at::Tensor& x, const at::Tensor& m) { return SquaredMatmul::apply(x, m); }

at::Tensor noisy_output(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                        std::function<at::Tensor()> noise, std::function<at::Tensor()> variance,
                        std::optional<at::ScalarType> out, std::vector<std::uint64_t> sequence_keys) {
  if (!noise && sequence_keys.empty()) throw Error("noisy_output: neither a noise draw nor sequence keys");
  if (!sequence_keys.empty() && static_cast<int64_t>(sequence_keys.size()) != mean.size(0))
    throw Error("noisy_output: one noise key per sequence is needed");
  auto recomputed = c10::make_intrusive<Recomputed>();
  recomputed->noise = std::move(noise);
  recomputed->variance = std::move(variance);
  recomputed->sequence_keys = std::move(sequence_keys);
  return NoisyOutput::apply(mean, v, bound, recomputed, out.value_or(mean.scalar_type()));
}

}  // namespace abmll::meta
