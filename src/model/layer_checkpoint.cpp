// Gradient checkpointing (see layer_checkpoint.h) as a custom autograd function: forward runs the block without
// recording, backward reruns it with grad on from the saved input (detached) and backpropagates the incoming
// gradient through that second run to the input and the params (the reentrant scheme of torch.utils.checkpoint).
#include "model/layer_checkpoint.h"

#include <ATen/core/ivalue.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <utility>

#include "util/error.h"

namespace abmll::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides the input: the block and its params (the very tensors the block uses, so that
// autograd::grad finds them in the rerun's graph). Kept in the node's saved_data.
struct BlockState : torch::CustomClassHolder {
  Block fn;
  std::vector<at::Tensor> params;
};

struct Checkpoint : public torch::autograd::Function<Checkpoint> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, at::TensorList params,
                            const c10::intrusive_ptr<BlockState>& state) {
    ctx->save_for_backward({input});
    ctx->saved_data["state"] = c10::IValue::make_capsule(state);
    return state->fn(input);  // grad mode is off here: nothing is recorded
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor input = ctx->get_saved_variables()[0];
    const auto state = c10::static_intrusive_pointer_cast<BlockState>(ctx->saved_data["state"].toCapsule());
    // Grad mode is on in backward only for a differentiable backward (create_graph). Recomputing from the detached
    // input cannot give second derivatives through the input, and recomputing from the attached input would let
    // the inner autograd::grad below reach earlier layers and count their gradients twice: refuse.
    if (at::GradMode::is_enabled())
      throw Error("a checkpointed block cannot be differentiated twice (create_graph); run without gradient "
                  "checkpointing (ForwardOptions::double_backward turns it off)");
    const at::Tensor x = input.detach().requires_grad_(input.requires_grad());
    at::Tensor out;
    {
      at::AutoGradMode grad(true);
      out = state->fn(x);
    }
    // Gradients for the input and each param, in apply()'s order; undefined for those not requiring grad.
    variable_list wrt;
    std::vector<std::size_t> slot;
    if (x.requires_grad()) wrt.push_back(x), slot.push_back(0);
    for (std::size_t i = 0; i < state->params.size(); ++i)
      if (state->params[i].requires_grad()) wrt.push_back(state->params[i]), slot.push_back(i + 1);
    variable_list result(state->params.size() + 2);  // input, params..., state
    if (wrt.empty() || !out.requires_grad()) return result;
    const variable_list grads = torch::autograd::grad({out}, wrt, {grad_outputs[0]}, /*retain_graph=*/false,
                                                      /*create_graph=*/false, /*allow_unused=*/true);
    for (std::size_t k = 0; k < grads.size(); ++k) result[slot[k]] = grads[k];
    return result;
  }
};

}  // namespace

at::Tensor checkpointed(Block fn, const at::Tensor& input, const std::vector<at::Tensor>& params) {
  bool any = input.requires_grad();
  for (const auto& p : params) any = any || p.requires_grad();
  if (!at::GradMode::is_enabled() || !any) return fn(input);
  auto state = c10::make_intrusive<BlockState>();
  state->fn = std::move(fn);
  state->params = params;
  return Checkpoint::apply(input, at::TensorList(state->params), state);
}

}  // namespace abmll::model
