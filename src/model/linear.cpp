// The frozen projection plus the adapter's term (see linear.h).
#include "model/linear.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/linear.h>

namespace abmll::model {

at::Tensor linear(const at::Tensor& x, const LinearWeights& w, const LinearSite& site,
                  const LinearAdapter* adapter) {
  at::Tensor y = at::linear(x, w.weight, w.bias);  // undefined bias = none
  if (adapter != nullptr) {
    at::Tensor extra = adapter->delta(x, site);
    if (extra.defined()) y = y + extra;
  }
  return y;
}

}  // namespace abmll::model
