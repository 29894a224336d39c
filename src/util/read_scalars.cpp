#include "util/read_scalars.h"

#include <ATen/ops/stack.h>

namespace abmll {

std::vector<double> read_scalars(const std::vector<at::Tensor>& scalars) {
  if (scalars.empty()) return {};
  std::vector<at::Tensor> values;
  values.reserve(scalars.size());
  const at::Device device = scalars.front().device();
  bool one_device = true;
  for (const auto& s : scalars) {
    values.push_back(s.detach().reshape({}).to(at::kDouble));
    one_device = one_device && s.device() == device;
  }
  if (!one_device)
    for (auto& v : values) v = v.cpu();
  const at::Tensor host = at::stack(values).cpu();
  const double* v = host.const_data_ptr<double>();
  return {v, v + host.numel()};
}

}  // namespace abmll
