// The LoRA update as one autograd function (see low_rank_product.h).
#include "model/low_rank_product.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/autograd/custom_function.h>

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct LowRankProduct : public torch::autograd::Function<LowRankProduct> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& a, const at::Tensor& b,
                            double s) {
    ctx->save_for_backward({x, a, b});
    ctx->saved_data["s"] = s;
    return at::bmm(at::bmm(x.to(a.scalar_type()), a.transpose(1, 2)) * s, b.transpose(1, 2));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &a = saved[1], &b = saved[2];
    const double s = ctx->saved_data["s"].toDouble();
    const at::Tensor& g = grad_outputs[0];  // [B, T, O]
    const at::Tensor xc = x.to(a.scalar_type());
    const at::Tensor g_h = at::bmm(g, b) * s;  // [B, T, R]: the gradient at h = x a^T
    at::Tensor g_x, g_a, g_b;
    if (ctx->needs_input_grad(0)) g_x = at::bmm(g_h, a).to(x.scalar_type());
    if (ctx->needs_input_grad(1)) g_a = at::bmm(g_h.transpose(1, 2), xc);
    if (ctx->needs_input_grad(2)) g_b = at::bmm(g.transpose(1, 2), at::bmm(xc, a.transpose(1, 2)) * s);
    return {g_x, g_a, g_b, at::Tensor()};
  }
};

}  // namespace

at::Tensor low_rank_product(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, double s) {
  return LowRankProduct::apply(x, a, b, s);
}

int64_t group_block_size(const at::Tensor& group_of_sequence) {
  const at::Tensor g = group_of_sequence.cpu().contiguous();
  const int64_t batch = g.numel();
  const int64_t* v = g.const_data_ptr<int64_t>();
  if (batch == 0 || v[0] != 0) return 0;
  int64_t n = 1;
  while (n < batch && v[n] == 0) ++n;
  if (batch % n != 0) return 0;
  for (int64_t i = 0; i < batch; ++i)
    if (v[i] != i / n) return 0;
  return n;
}

at::Tensor grouped_low_rank_product(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, double s,
                                    const at::Tensor& group, int64_t block) {
  const int64_t batch = x.size(0), time = x.size(1), out = b.size(1);
  if (batch == 0) return at::zeros({0, time, out}, a.options());
  if (block > 0 && batch % block == 0 && batch / block <= a.size(0)) {
    const int64_t used = batch / block;
    const at::Tensor rows = x.reshape({used, block * time, x.size(2)});
    return low_rank_product(rows, a.narrow(0, 0, used), b.narrow(0, 0, used), s).view({batch, time, out});
  }
  const at::Tensor index = group.to(x.device());
  return low_rank_product(x, a.index_select(0, index), b.index_select(0, index), s);
}

}  // namespace abmll::model
