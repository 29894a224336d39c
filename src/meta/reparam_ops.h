// The local reparameterisation's pieces (weight_lora.h) as autograd functions that keep for backward only what they
// were given, never the large intermediates a chain of ATen ops would keep: at an adapted site of the 8B shape with
// 8192 tokens, 2 x [N, I] (the float32 input and its square) and 4 x [N, O] float32 tensors (the variance, clamped,
// its square root, the noise), about 0.8 GB for q_proj, are not kept at all: the noise is drawn again in backward,
// and the variance is recomputed there from the small factors of its low-rank route (the mean's low-rank product is
// model/low_rank_product.h). Each backward is written in differentiable ops on the saved inputs, so second-order
// meta-gradients flow through them; the noisy output's first-order backward, and its forward, are one fused pass
// (noisy_output_fused.h) where its inputs are float32.
//
// Dimension letters: B sequences, T time, N = B T rows, I / O in / out features, K columns.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace abmll::meta {

// square(x) @ m in m's dtype: x [N, I] of any floating dtype (kept as given: usually the very tensor the frozen
// projection keeps too), m [I, K].
at::Tensor squared_matmul(const at::Tensor& x, const at::Tensor& m);

// mean + sqrt(max(v, bound)) * noise: mean, v [B, T, O], bound [B, T, 1] (> 0), and `noise` a function returning
// the same [B, T, O] tensor every time it is called (a seeded draw): it is called in forward and again in backward,
// so that only v and bound are kept. `variance`, when given, returns v's value again, computed from tensors that v's
// own graph keeps anyway (weight_gaussian.h: OutputVariance::recompute), and is called in backward instead of keeping
// v (at the 8B shape, 160 MB per layer at 8192 tokens); it must be differentiable where v is, for second-order
// meta-gradients. At v = bound the gradient is split between v and bound, as ATen's maximum does. The result is
// rounded once to `out` (default: mean's dtype; the activations' dtype at an adapted site). With float32 inputs it
// runs as one fused pass forward and, unless differentiated again, one backward (noisy_output_fused.h); otherwise,
// and as their reference, as the chain of ATen ops above. With `sequence_keys` (B keys), the noise is counter-based
// (counter_noise.h), drawn inside the fused passes and never stored, and `noise` is not used.
at::Tensor noisy_output(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                        std::function<at::Tensor()> noise, std::function<at::Tensor()> variance = {},
                        std::optional<at::ScalarType> out = std::nullopt,
                        std::vector<std::uint64_t> sequence_keys = {});

// rows[first] * rows[second], row by row: rows [R, X], first and second [P] int64 indices into rows -> [P, X], keeping
// only rows (its products over the pairs of the variance's Gram matrix, weight_gaussian.h, would otherwise keep
// three [P, X] tensors per posterior and site: P = 153 at rank 16, about 7 MB at X = 4096).
at::Tensor pair_products(const at::Tensor& rows, const at::Tensor& first, const at::Tensor& second);

}  // namespace abmll::meta
