// A LoRA update as one autograd function that keeps its input as given: s (x a_b^T) b_b^T per sequence b, in the
// factors' dtype. Written as ATen ops, x.to(float32) (for bfloat16 activations) and the [B, T, R] product would stay
// alive until backward at every adapted site; here backward recomputes them from x, a and b (2 N R I multiply-adds,
// a fraction of a percent of the frozen projection's). The backward is itself differentiable (second-order
// meta-gradients).
//
// Dimension letters: B sequences, T time, I / O in / out features, R rank.
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::model {

// x [B, T, I] (any floating dtype), a [B, R, I], b [B, O, R] -> [B, T, O] in a's dtype. A batch of 1 in a and b
// applies to every sequence when x is [1, B T, I] (callers reshape).
at::Tensor low_rank_product(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, double s);

// n when sequence i of `group_of_sequence` ([B] int64) uses group i / n for every i, B a multiple of n: each
// group's sequences are one block of n consecutive ones (tasks' episodes in order, equal sizes). 0 otherwise, and
// for an empty batch.
int64_t group_block_size(const at::Tensor& group_of_sequence);

// The LoRA update with each sequence's own group's factors: x [B, T, I], a [G, R, I], b [G, O, R], `group` [B] int64
// (any device), `block` = group_block_size(group) -> [B, T, O] in a's dtype. With blocks, x is viewed as
// [B / n, n T, I] against the first B / n groups' factors as they are, and `group` is not read; otherwise the factors
// are gathered per sequence ([B, R, I] and [B, O, R] copies, kept for backward, and a backward that scatters them
// back), and `group` is copied to x's device (on a GPU, a copy from pageable memory waits for the device).
at::Tensor grouped_low_rank_product(const at::Tensor& x, const at::Tensor& a, const at::Tensor& b, double s,
                                    const at::Tensor& group, int64_t block);

}  // namespace abmll::model
