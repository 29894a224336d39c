// Gradient checkpointing (activation recomputation) for LibTorch C++, which has no torch.utils.checkpoint: a block
// run through checkpointed() keeps only its input for backward, not its intermediate tensors, and is run again,
// with grad on, when backward reaches it. Per decoder layer this trades one extra forward for activation memory
// O(L B T D) instead of O(L B T (D + F + heads x T)).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace abmll::model {

// The block: input -> output, a pure function of its input and of `params` (see checkpointed()).
using Block = std::function<at::Tensor(const at::Tensor&)>;

// Returns fn(input), differentiable with respect to `input` and to `params`: the tensors fn uses besides its input
// that may require grad (e.g. LinearAdapter::trainable_tensors(); leaves or not). A tensor fn uses but `params`
// omits gets no gradient. fn must compute the same thing when rerun in backward (no fresh randomness: seed it),
// and what it refers to must outlive backward. Without grad mode, or when nothing requires grad, this is fn(input).
// The result can be differentiated once: a differentiable backward (create_graph) through it throws abmll::Error.
at::Tensor checkpointed(Block fn, const at::Tensor& input, const std::vector<at::Tensor>& params);

}  // namespace abmll::model
