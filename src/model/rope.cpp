// RoPE tables and rotation (see rope.h). The inverse frequencies repeat transformers' arithmetic step by step
// (modeling_rope_utils.py: the default parameters and _compute_llama3_parameters), in the same float32 ops and
// order, so the angles are the reference's exactly rather than merely close.
#include "model/rope.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/pow.h>
#include <ATen/ops/reciprocal.h>
#include <ATen/ops/roll.h>
#include <ATen/ops/where.h>

#include <cmath>

namespace abmll::model {

at::Tensor rope_inv_freq(const ModelConfig& config) {
  const int64_t dim = config.head_dim;
  // 1 / theta^(arange(0, Dh, 2) / Dh), all float32.
  at::Tensor exponent = at::arange(0, dim, 2, at::TensorOptions().dtype(at::kFloat)) / static_cast<double>(dim);
  at::Tensor inv_freq = at::reciprocal(at::pow(config.rope.theta, exponent));
  if (config.rope.type != "llama3") return inv_freq;

  // Llama-3.1: wavelengths longer than original_max / low_freq_factor are stretched by `factor`, shorter than
  // original_max / high_freq_factor kept, and the band between interpolated smoothly.
  const RopeConfig& r = config.rope;
  const double old_context = static_cast<double>(r.original_max_position_embeddings);
  const double low_freq_wavelen = old_context / r.low_freq_factor;
  const double high_freq_wavelen = old_context / r.high_freq_factor;
  at::Tensor wavelen = at::reciprocal(inv_freq) * (2 * M_PI);
  at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / r.factor, inv_freq);
  at::Tensor smooth = (at::reciprocal(wavelen) * old_context - r.low_freq_factor) /
                      (r.high_freq_factor - r.low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
  at::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return at::where(medium, smoothed, scaled);
}

std::pair<at::Tensor, at::Tensor> rope_tables(const at::Tensor& positions, const at::Tensor& inv_freq,
                                              at::ScalarType dtype) {
  // [B, T, 1] * [Dh/2] -> [B, T, Dh/2], duplicated to [B, T, Dh] for the two halves.
  at::Tensor freqs = positions.unsqueeze(-1).to(at::kFloat) * inv_freq.to(positions.device(), at::kFloat);
  at::Tensor angles = at::cat({freqs, freqs}, -1);
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // [B, 1, T, Dh], broadcast over heads
  // rotate_half(x) * sin = (-x2 s1, x1 s2) = (x2 (-s1), x1 s2): x's halves swapped (one roll, whose backward is
  // one roll) times sin with its first half negated (negation is exact, so the products are bit for bit the same).
  const int64_t half = x.size(-1) / 2;
  const at::Tensor signed_sin = at::cat({-s.narrow(-1, 0, half), s.narrow(-1, half, half)}, -1);
  return x * c + at::roll(x, {half}, {-1}) * signed_sin;
}

}  // namespace abmll::model
