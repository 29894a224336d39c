// The gated MLP (see mlp.h).
#include "model/mlp.h"

#include "model/geglu.h"
#include "model/swiglu.h"

namespace abmll::model {

at::Tensor mlp(const at::Tensor& x, const MlpWeights& w, Activation activation, int64_t layer,
               const LinearAdapter* adapter) {
  at::Tensor gate = linear(x, w.gate, {layer, Projection::gate}, adapter);  // [B, T, F]
  at::Tensor up = linear(x, w.up, {layer, Projection::up}, adapter);        // [B, T, F]
  const at::Tensor gated = activation == Activation::silu ? swiglu(gate, up)
                                                          : geglu(gate, up, activation == Activation::gelu_tanh);
  return linear(gated, w.down, {layer, Projection::down}, adapter);
}

}  // namespace abmll::model
