// The MLP (see mlp.h).
#include "model/mlp.h"

#include "model/geglu.h"
#include "model/swiglu.h"

namespace abmll::model {

at::Tensor mlp(const at::Tensor& x, const MlpWeights& w, Activation activation, int64_t layer,
               const LinearAdapter* adapter) {
  if (activation == Activation::xielu)  // ungated
    return linear(xielu(linear(x, w.up, {layer, Projection::up}, adapter), w.xielu), w.down,
                  {layer, Projection::down}, adapter);
  at::Tensor gate, up;  // [B, T, F] each
  if (w.gate_up.weight.defined()) {  // Phi-3: one projection, halves as Phi3MLP chunks it (views)
    const at::Tensor gate_up = linear(x, w.gate_up, {layer, w.gate_up_site}, adapter);  // [B, T, 2F]
    const int64_t f = gate_up.size(-1) / 2;
    gate = gate_up.narrow(-1, 0, f);
    up = gate_up.narrow(-1, f, f);
  } else {
    gate = linear(x, w.gate, {layer, Projection::gate}, adapter);
    up = linear(x, w.up, {layer, Projection::up}, adapter);
  }
  const at::Tensor gated = activation == Activation::silu ? swiglu(gate, up)
                                                          : geglu(gate, up, activation == Activation::gelu_tanh);
  return linear(gated, w.down, {layer, w.down_site}, adapter);
}

}  // namespace abmll::model
