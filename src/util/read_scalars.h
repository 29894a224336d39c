// Reading a step's scalar results (losses, counts) back from the device all at once. On a GPU each read of a single
// value (Tensor::item) waits for every kernel queued before it, so the host cannot queue the next kernels while
// the device works; a step that reads its figures as it goes (an NLL per inner step, a count per adapted layer)
// leaves the device idle at each one. Keeping them as 0-dim tensors and reading them here, once per step, keeps
// the queue full.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace abmll {

// The values of `scalars` (each one element, any dtype) as float64, in order: one transfer when they are all on one
// device (one per device otherwise). Integer counts are exact up to 2^53. Empty input: empty output, no transfer.
std::vector<double> read_scalars(const std::vector<at::Tensor>& scalars);

}  // namespace abmll
