// SwiGLU's gating as one autograd function (see swiglu.h).
#include "model/swiglu.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/silu_backward.h>
#include <torch/csrc/autograd/custom_function.h>

#ifdef ABMLL_HAVE_CUDA
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "swiglu_kernels.h"
#include "util/cuda_kernels.h"
#endif

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#ifdef ABMLL_HAVE_CUDA
// On a GPU (when cuda/ is built): cuda/swiglu_kernels.cu's kernels, one pass over [N, F] forward and one backward, for
// contiguous gate and up of one floating dtype.
bool kernels_apply(const at::Tensor& gate, const at::Tensor& up) {
  const auto t = gate.scalar_type();
  return gate.is_cuda() && cuda_kernels_enabled() && up.device() == gate.device() && up.scalar_type() == t &&
         up.sizes() == gate.sizes() && gate.is_contiguous() && up.is_contiguous() && kernel_activation_dtype(t);
}

at::Tensor forward_kernel(const at::Tensor& gate, const at::Tensor& up) {
  const c10::cuda::CUDAGuard guard(gate.device());
  at::Tensor out = at::empty_like(gate);
  cuda::swiglu_forward(gate.const_data_ptr(), up.const_data_ptr(), out.mutable_data_ptr(), gate.numel(),
                       activation_dtype(gate.scalar_type()), c10::cuda::getCurrentCUDAStream().stream());
  return out;
}

// g_gate and g_up where wanted (undefined otherwise).
void backward_kernel(const at::Tensor& g, const at::Tensor& gate, const at::Tensor& up, at::Tensor* g_gate,
                     at::Tensor* g_up) {
  const c10::cuda::CUDAGuard guard(gate.device());
  const at::Tensor gc = g.contiguous();
  if (g_gate) *g_gate = at::empty_like(gate);
  if (g_up) *g_up = at::empty_like(up);
  cuda::swiglu_backward(gc.const_data_ptr(), gate.const_data_ptr(), up.const_data_ptr(),
                        g_gate ? g_gate->mutable_data_ptr() : nullptr, g_up ? g_up->mutable_data_ptr() : nullptr,
                        gate.numel(), activation_dtype(gate.scalar_type()), c10::cuda::getCurrentCUDAStream().stream());
}
#endif

struct Swiglu : public torch::autograd::Function<Swiglu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    ctx->save_for_backward({gate, up});
#ifdef ABMLL_HAVE_CUDA
    if (kernels_apply(gate, up)) return forward_kernel(gate, up);
#endif
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
#ifdef ABMLL_HAVE_CUDA
    if (!twice && kernels_apply(gate, up) && g.scalar_type() == gate.scalar_type() && g.sizes() == gate.sizes()) {
      backward_kernel(g, gate, up, ctx->needs_input_grad(0) ? &g_gate : nullptr,
                      ctx->needs_input_grad(1) ? &g_up : nullptr);
      return {g_gate, g_up};
    }
#endif
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
