// SwiGLU MLP (see mlp.h).
#include "model/mlp.h"

#include "model/swiglu.h"

namespace abmll::model {

at::Tensor mlp(const at::Tensor& x, const MlpWeights& w, int64_t layer, const LinearAdapter* adapter) {
  at::Tensor gate = linear(x, w.gate, {layer, Projection::gate}, adapter);  // [B, T, F]
  at::Tensor up = linear(x, w.up, {layer, Projection::up}, adapter);        // [B, T, F]
  return linear(swiglu(gate, up), w.down, {layer, Projection::down}, adapter);
}

}  // namespace abmll::model
