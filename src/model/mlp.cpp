// The gated MLP (see mlp.h).
#include "model/mlp.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/gelu.h>

#include "model/swiglu.h"

namespace abmll::model {

at::Tensor mlp(const at::Tensor& x, const MlpWeights& w, Activation activation, int64_t layer,
               const LinearAdapter* adapter) {
  at::Tensor gate = linear(x, w.gate, {layer, Projection::gate}, adapter);  // [B, T, F]
  at::Tensor up = linear(x, w.up, {layer, Projection::up}, adapter);        // [B, T, F]
  // GeGLU as ATen ops (which keep gelu(gate) for backward as well as gate and up: one [B, T, F] more than swiglu's
  // autograd function).
  const at::Tensor gated = activation == Activation::silu ? swiglu(gate, up)
                           : activation == Activation::gelu_tanh ? at::gelu(gate, "tanh") * up
                                                                 : at::gelu(gate) * up;
  return linear(gated, w.down, {layer, Projection::down}, adapter);
}

}  // namespace abmll::model
