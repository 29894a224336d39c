// RoPE tables and rotation (see rope.h). The inverse frequencies repeat transformers' arithmetic step by step
// (modeling_rope_utils.py: the default parameters, _compute_llama3_parameters and _compute_yarn_parameters), in the
// same float32 ops and order, so the angles are the reference's exactly rather than merely close.
#include "model/rope.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/pow.h>
#include <ATen/ops/reciprocal.h>
#include <ATen/ops/repeat_interleave.h>
#include <ATen/ops/roll.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/where.h>

#include <algorithm>
#include <cmath>

#ifdef ABMLL_HAVE_CUDA
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/csrc/autograd/custom_function.h>

#include "rope_kernels.h"
#include "util/cuda_kernels.h"
#endif

namespace abmll::model {

int64_t rotary_dim(const ModelConfig& config) { return config.rotary_dim > 0 ? config.rotary_dim : config.head_dim; }

at::Tensor rope_inv_freq(const ModelConfig& config, bool long_context) {
  return rope_inv_freq(config.rope, rotary_dim(config), long_context);
}

namespace {

// YaRN (_compute_yarn_parameters): each frequency blended between itself (extrapolation: it turns many times in the
// original context) and itself / factor (interpolation: it turns few times), by a linear ramp over the dimensions
// whose rotation counts in original_max_position_embeddings lie between beta_fast and beta_slow. The range in double
// precision, the frequencies in float32, as the reference computes them.
at::Tensor yarn_inv_freq(const RopeConfig& r, int64_t dim) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  // The dimension whose frequency makes `rotations` turns in the original context.
  auto correction_dim = [&](double rotations) {
    return static_cast<double>(dim) *
           std::log(static_cast<double>(r.original_max_position_embeddings) / (rotations * 2 * M_PI)) /
           (2 * std::log(r.theta));
  };
  double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // no singular ramp
  const at::Tensor pos_freqs = at::pow(r.theta, at::arange(0, dim, 2, f32) / static_cast<double>(dim));
  const at::Tensor extrapolation = at::reciprocal(pos_freqs);
  const at::Tensor interpolation = at::reciprocal(pos_freqs * r.factor);
  const at::Tensor ramp = ((at::arange(dim / 2, f32) - low) / (high - low)).clamp(0, 1);
  const at::Tensor extrapolation_share = 1 - ramp;
  return interpolation * (1 - extrapolation_share) + extrapolation * extrapolation_share;
}

}  // namespace

at::Tensor rope_inv_freq(const RopeConfig& r, int64_t dim, bool long_context) {
  // 1 / theta^(arange(0, Dh, 2) / Dh), all float32.
  at::Tensor exponent = at::arange(0, dim, 2, at::TensorOptions().dtype(at::kFloat)) / static_cast<double>(dim);
  if (r.type == "longrope") {  // _compute_longrope_parameters: 1 / (factor_i theta^(2i/Dh)), factors in float32
    const at::Tensor factors =
        at::tensor(long_context ? r.long_factor : r.short_factor, at::TensorOptions().dtype(at::kDouble))
            .to(at::kFloat);
    return at::reciprocal(factors * at::pow(r.theta, exponent));
  }
  at::Tensor inv_freq = at::reciprocal(at::pow(r.theta, exponent));
  if (r.type == "linear") return inv_freq / r.factor;  // _compute_linear_scaling_rope_parameters
  if (r.type == "yarn") return yarn_inv_freq(r, dim);
  if (r.type != "llama3") return inv_freq;

  // Llama-3.1: wavelengths longer than original_max / low_freq_factor are stretched by `factor`, shorter than
  // original_max / high_freq_factor kept, and the band between interpolated smoothly.
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
                                              at::ScalarType dtype, double attention_factor, bool interleaved) {
  // [B, T, 1] * [Dh/2] -> [B, T, Dh/2], duplicated to [B, T, Dh].
  at::Tensor freqs = positions.unsqueeze(-1).to(at::kFloat) * inv_freq.to(positions.device(), at::kFloat);
  // rotate_half's layout: (f0, f1, ..., f0, f1, ...); GLM's: (f0, f0, f1, f1, ...), the first half of the former
  // repeated in place as its apply_rotary_pos_emb takes it (the same angles, so the same cos and sin).
  at::Tensor angles = interleaved ? freqs.repeat_interleave(2, -1) : at::cat({freqs, freqs}, -1);
  if (attention_factor == 1.0) return {angles.cos().to(dtype), angles.sin().to(dtype)};
  return {(angles.cos() * attention_factor).to(dtype), (angles.sin() * attention_factor).to(dtype)};
}

namespace {

// sin with its first half negated, [B, 1, T, Dh]: rotate_half(x) * sin = (-x2 s1, x1 s2) = (x2 (-s1), x1 s2), x's
// halves swapped (one roll, whose backward is one roll) times this (negation is exact, so the products are bit for
// bit the same).
at::Tensor signed_sin_of(const at::Tensor& sin) {
  const at::Tensor s = sin.unsqueeze(1);
  const int64_t half = s.size(-1) / 2;
  return at::cat({-s.narrow(-1, 0, half), s.narrow(-1, half, half)}, -1);
}

at::Tensor rope_chain(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return x * cos.unsqueeze(1) + at::roll(x, {x.size(-1) / 2}, {-1}) * signed_sin_of(sin);
}

// GLM's rotation of adjacent pairs, as its apply_rotary_pos_emb: x * cos + rotate(x) * sin with rotate(x) =
// (-x1, x0, -x3, x2, ...) (no kernel of its own; differentiable twice).
at::Tensor pairs_chain(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const at::Tensor even = x.slice(-1, 0, x.size(-1), 2), odd = x.slice(-1, 1, x.size(-1), 2);
  const at::Tensor rotated = at::stack({-odd, even}, -1).flatten(-2);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

#ifdef ABMLL_HAVE_CUDA
// On a GPU (when cuda/ is built): cuda/rope_kernels.cu, one pass each way, for x [B, H, T, Dh] and tables [B, T, Dh]
// of one floating dtype with contiguous last dimensions (x is usually a transposed view of a projection).
bool kernels_apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const auto t = x.scalar_type();
  if (!x.is_cuda() || !cuda_kernels_enabled() || x.dim() != 4 || x.size(-1) == 0 || x.size(-1) % 2 != 0 ||
      x.numel() >= (int64_t{1} << 31))
    return false;
  if (!kernel_activation_dtype(t) || cos.requires_grad() || sin.requires_grad())
    return false;
  for (const at::Tensor* table : {&cos, &sin})
    if (table->dim() != 3 || table->device() != x.device() || table->scalar_type() != t || table->stride(2) != 1 ||
        table->size(0) != x.size(0) || table->size(1) != x.size(2) || table->size(2) != x.size(3) ||
        table->strides() != cos.strides())
      return false;
  return x.stride(3) == 1;
}

// in -> out (both [B, H, T, Dh], last dimension contiguous): the rotation, or its transpose (backward).
void rotate(const at::Tensor& in, const at::Tensor& cos, const at::Tensor& sin, at::Tensor& out, bool backward) {
  const c10::cuda::CUDAGuard guard(in.device());
  cuda::RopeLayout l;
  l.batch = in.size(0);
  l.heads = in.size(1);
  l.time = in.size(2);
  l.dim = in.size(3);
  for (int d = 0; d < 3; ++d) {
    l.in_strides[d] = in.stride(d);
    l.out_strides[d] = out.stride(d);
  }
  l.table_strides[0] = cos.stride(0);
  l.table_strides[1] = cos.stride(1);
  cuda::rope_apply(in.const_data_ptr(), cos.const_data_ptr(), sin.const_data_ptr(), out.mutable_data_ptr(), l,
                   activation_dtype(in.scalar_type()), backward, c10::cuda::getCurrentCUDAStream().stream());
}

struct RopeRotation : public torch::autograd::Function<RopeRotation> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    at::Tensor y = at::empty_like(x);  // x's layout (a transposed view stays one)
    rotate(x, cos, sin, y, false);
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &cos = saved[0], &sin = saved[1];
    const at::Tensor g = grad_outputs[0].stride(3) == 1 ? grad_outputs[0] : grad_outputs[0].contiguous();
    if (at::GradMode::is_enabled()) {  // differentiated again: the chain's backward, as differentiable ops
      const at::Tensor g_x = g * cos.unsqueeze(1) + at::roll(g * signed_sin_of(sin), {-(g.size(-1) / 2)}, {-1});
      return {g_x, at::Tensor(), at::Tensor()};
    }
    at::Tensor g_x = at::empty_like(g);
    rotate(g, cos, sin, g_x, true);
    return {g_x, at::Tensor(), at::Tensor()};
  }
};
#endif

}  // namespace

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, RopeStyle style) {
  const int64_t rotated = cos.size(-1);
  if (rotated < x.size(-1))  // as Phi-3's apply_rotary_pos_emb: the first `rotated` dimensions, the rest as they are
    return at::cat({apply_rope(x.narrow(-1, 0, rotated), cos, sin, style),
                    x.narrow(-1, rotated, x.size(-1) - rotated)},
                   -1);
  if (style == RopeStyle::interleaved) return pairs_chain(x, cos, sin);
  if (style == RopeStyle::interleaved_in_float32) {  // Cohere's: x in float32 (float64 stays), rounded once
    const at::ScalarType wide = at::promote_types(x.scalar_type(), at::kFloat);
    return pairs_chain(x.to(wide), cos.to(wide), sin.to(wide)).to(x.scalar_type());
  }
#ifdef ABMLL_HAVE_CUDA
  if (kernels_apply(x, cos, sin)) return RopeRotation::apply(x, cos, sin);
#endif
  return rope_chain(x, cos, sin);
}

}  // namespace abmll::model
