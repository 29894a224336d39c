// Granite-4.0's Mamba-2 layers (see mamba2.h).
#include "model/mamba2.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/conv1d.h>
#include <ATen/ops/exp.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/rsqrt.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/softplus.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>

#include <vector>

namespace abmll::model {

at::Tensor mamba2_chunk_scan(const at::Tensor& x, const at::Tensor& dt, const at::Tensor& a, const at::Tensor& b,
                             const at::Tensor& c, int64_t chunk) {
  const int64_t batch = x.size(0), t = x.size(1), heads = x.size(2), p = x.size(3), groups = b.size(2);
  const at::ScalarType wide = at::promote_types(x.scalar_type(), at::kFloat);
  const at::Tensor step = dt.to(wide);  // [B, T, H]
  // [B, T, H, d] -> [B, H, T, d]; B and C repeated for the heads of their group.
  auto per_head = [&](const at::Tensor& y) {
    const at::Tensor z = y.size(2) == heads ? y : y.repeat_interleave(heads / groups, 2);
    return z.transpose(1, 2).to(wide).contiguous();
  };
  at::Tensor input = per_head(x * step.unsqueeze(-1));     // dt x, [B, H, T, P]
  at::Tensor log_decay = (a.to(wide) * step).transpose(1, 2);  // a dt, [B, H, T]
  at::Tensor writes = per_head(b);                          // [B, H, T, N]
  at::Tensor reads = per_head(c);                           // [B, H, T, N]

  // Padded with zeros to whole chunks: a padded token writes nothing (x 0) and decays nothing (a dt 0).
  const int64_t pad = (chunk - t % chunk) % chunk, n = (t + pad) / chunk;
  if (pad > 0) {
    input = at::constant_pad_nd(input, {0, 0, 0, pad});
    log_decay = at::constant_pad_nd(log_decay, {0, pad});
    writes = at::constant_pad_nd(writes, {0, 0, 0, pad});
    reads = at::constant_pad_nd(reads, {0, 0, 0, pad});
  }
  auto chunked = [&](const at::Tensor& y) { return y.reshape({batch, heads, n, chunk, y.size(-1)}); };
  input = chunked(input);    // [B, H, n, c, P]
  writes = chunked(writes);  // [B, H, n, c, N]
  reads = chunked(reads);    // [B, H, n, c, N]
  const at::Tensor decay = log_decay.reshape({batch, heads, n, chunk});  // [B, H, n, c]
  const at::Tensor cumulative = decay.cumsum(-1);                        // from the chunk's start, [B, H, n, c]

  // The log decay from token j to token i >= j of a chunk, summed over (j, i] itself rather than taken as a
  // difference of cumulative sums (which loses digits once they grow large): -inf above the diagonal.
  const at::TensorOptions flags = cumulative.options().dtype(at::kBool);
  const at::Tensor strictly_lower = at::ones({chunk, chunk}, flags).tril(-1);
  const at::Tensor between = decay.unsqueeze(-1)
                                 .expand({batch, heads, n, chunk, chunk})
                                 .masked_fill(strictly_lower.logical_not(), 0.0)
                                 .cumsum(-2)
                                 .masked_fill(at::ones({chunk, chunk}, flags).triu(1), -INFINITY);  // [.., c, c]
  // Within a chunk: y_i = sum_{j <= i} (C_i . B_j) exp(decay from j to i) dt_j x_j.
  const at::Tensor within = at::matmul(at::matmul(reads, writes.transpose(-1, -2)) * between.exp(), input);
  // Each chunk's own contribution to the state at its end, [B, H, n, N, P], and how the state decays across it.
  const at::Tensor last = cumulative.narrow(-1, chunk - 1, 1);  // [B, H, n, 1]
  const at::Tensor written =
      at::matmul((writes * (last - cumulative).exp().unsqueeze(-1)).transpose(-1, -2), input);
  const at::Tensor chunk_decay = last.exp().unsqueeze(-1);  // [B, H, n, 1, 1]
  // The state entering each chunk (0 before the first).
  at::Tensor state = at::zeros({batch, heads, writes.size(-1), p}, input.options());
  std::vector<at::Tensor> entering;
  entering.reserve(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    entering.push_back(state);
    if (i + 1 < n) state = state * chunk_decay.select(2, i) + written.select(2, i);
  }
  // y_i += (C_i exp(decay from the chunk's start to i)) . S_entering.
  const at::Tensor carried = at::matmul(reads * cumulative.exp().unsqueeze(-1), at::stack(entering, 2));
  const at::Tensor y = (within + carried).reshape({batch, heads, n * chunk, p}).narrow(2, 0, t);
  return y.transpose(1, 2).contiguous();  // [B, T, H, P]
}

at::Tensor mamba2(const at::Tensor& x, const Mamba2Weights& w, const ModelConfig& config, int64_t layer,
                  const at::Tensor& tokens, const LinearAdapter* adapter) {
  const Mamba2Config& m = config.mamba;
  const int64_t batch = x.size(0), t = x.size(1), inner = m.inner(), channels = m.conv_width();
  const int64_t bc_width = m.groups * m.state;
  const at::ScalarType dtype = x.scalar_type(), wide = at::promote_types(dtype, at::kFloat);
  const at::Tensor real = tokens.defined() ? tokens.unsqueeze(-1).to(dtype) : at::Tensor();  // [B, T, 1]
  // Zeroed at padding after in_proj rather than before it, as transformers does: with mamba_proj_bias its bias would
  // reach the first tokens' convolution, and a row's output would depend on how much padding precedes it.
  at::Tensor projected = linear(x, w.in, {layer, Projection::mamba_in}, adapter);  // [B, T, 2I + 2GN + H]
  if (real.defined()) projected = projected * real;
  const at::Tensor z = projected.narrow(-1, 0, inner);                                      // [B, T, I]
  const at::Tensor to_convolve = projected.narrow(-1, inner, channels);                     // [B, T, C]
  const at::Tensor dt_in = projected.narrow(-1, inner + channels, m.heads);                 // [B, T, H]

  // Causal depthwise convolution over time: K - 1 zeros before the first token, the first T outputs kept.
  at::Tensor convolved =
      at::silu(at::conv1d(to_convolve.transpose(1, 2), w.conv, w.conv_bias, /*stride=*/1,
                          /*padding=*/m.conv_kernel - 1, /*dilation=*/1, /*groups=*/channels)
                   .narrow(2, 0, t))
          .transpose(1, 2);  // [B, T, C]
  if (real.defined()) convolved = convolved * real;
  const at::Tensor xs = convolved.narrow(-1, 0, inner).reshape({batch, t, m.heads, m.head_dim});
  const at::Tensor bs = convolved.narrow(-1, inner, bc_width).reshape({batch, t, m.groups, m.state});
  const at::Tensor cs = convolved.narrow(-1, inner + bc_width, bc_width).reshape({batch, t, m.groups, m.state});

  // The step in x's dtype, as the reference computes it; A in float32.
  const at::Tensor dt = at::softplus(dt_in + w.dt_bias.to(dtype)).clamp(m.dt_min, m.dt_max);  // [B, T, H]
  const at::Tensor a = -w.a_log.to(wide).exp();                                                // [H]
  const at::Tensor scanned = mamba2_chunk_scan(xs, dt, a, bs, cs, m.chunk);                    // [B, T, H, P] wide
  const at::Tensor y = (scanned + w.d.unsqueeze(-1) * xs.to(wide)).reshape({batch, t, inner});

  // The gated RMSNorm (GraniteMoeHybridRMSNormGated): y times silu(z), normed over each group's I / G channels,
  // times w, all in the wide type; rounded to x's dtype for out_proj.
  const at::Tensor gated = (y * at::silu(z.to(wide))).reshape({batch, t, m.groups, inner / m.groups});
  const at::Tensor normed =
      (gated * at::rsqrt(gated.pow(2).mean(-1, /*keepdim=*/true) + config.rms_norm_eps)).reshape({batch, t, inner});
  return linear((w.norm * normed).to(dtype), w.out, {layer, Projection::mamba_out}, adapter);
}

}  // namespace abmll::model
