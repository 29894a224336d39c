// Qwen3.5's Gated DeltaNet (see gated_delta_net.h).
#include "model/gated_delta_net.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/conv1d.h>
#include <ATen/ops/exp.h>
#include <ATen/ops/linalg_solve_triangular.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/rsqrt.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/softplus.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>

#include <cmath>
#include <vector>

namespace abmll::model {
namespace {

// x / sqrt(sum x^2 + 1e-6) over the last dimension (the reference's l2norm, FLA's).
at::Tensor l2_normed(const at::Tensor& x) { return x * at::rsqrt((x * x).sum(-1, /*keepdim=*/true) + 1e-6); }

}  // namespace

at::Tensor chunk_gated_delta_rule(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& g,
                                  const at::Tensor& beta, int64_t chunk) {
  const int64_t b = v.size(0), t = v.size(1), hv = v.size(2), dv = v.size(3), hk = k.size(2), dk = k.size(3);
  const at::ScalarType wide = at::promote_types(v.scalar_type(), at::kFloat);
  // [B, T, heads, d] -> [B, Hv, T, d] in the wide type, key heads repeated for their value heads.
  auto per_value_head = [&](const at::Tensor& x) {
    const at::Tensor y = hk == hv || x.size(2) == hv ? x : x.repeat_interleave(hv / hk, 2);
    return y.transpose(1, 2).to(wide).contiguous();
  };
  at::Tensor query = l2_normed(per_value_head(q)) * std::pow(static_cast<double>(dk), -0.5);
  at::Tensor key = l2_normed(per_value_head(k));
  at::Tensor value = per_value_head(v);
  at::Tensor decay = g.transpose(1, 2).to(wide);     // [B, Hv, T]
  at::Tensor rate = beta.transpose(1, 2).to(wide);   // [B, Hv, T]

  // Padded with zeros to whole chunks: a padded token writes nothing (beta 0) and decays nothing (g 0).
  const int64_t pad = (chunk - t % chunk) % chunk, n = (t + pad) / chunk;
  if (pad > 0) {
    query = at::constant_pad_nd(query, {0, 0, 0, pad});
    key = at::constant_pad_nd(key, {0, 0, 0, pad});
    value = at::constant_pad_nd(value, {0, 0, 0, pad});
    decay = at::constant_pad_nd(decay, {0, pad});
    rate = at::constant_pad_nd(rate, {0, pad});
  }
  // [B, Hv, N, chunk, d] and [B, Hv, N, chunk]
  auto chunked = [&](const at::Tensor& x) { return x.reshape({b, hv, n, chunk, x.size(-1)}); };
  const at::Tensor key_beta = chunked(key * rate.unsqueeze(-1));
  const at::Tensor value_beta = chunked(value * rate.unsqueeze(-1));
  query = chunked(query);
  key = chunked(key);
  // The log of the decay from the chunk's start to each token, and between any two tokens i >= j of a chunk
  // (exp(G_i - G_j); 0 above the diagonal).
  const at::Tensor cumulative = decay.reshape({b, hv, n, chunk}).cumsum(-1);
  const at::Tensor above = at::ones({chunk, chunk}, cumulative.options().dtype(at::kBool)).triu(1);
  const at::Tensor between =
      (cumulative.unsqueeze(-1) - cumulative.unsqueeze(-2)).masked_fill(above, -INFINITY).exp();  // [.., chunk, chunk]

  // The UT transform: (I + strictly_lower(beta K K^T decay))^-1 turns the chunk's sequential delta updates into
  // matrix products: `corrected` values (the state-free part) and the decayed keys that read the incoming state.
  const at::Tensor system = at::matmul(key_beta, key.transpose(-1, -2)) * between;
  const at::Tensor corrected =
      at::linalg_solve_triangular(system, value_beta, /*upper=*/false, /*left=*/true, /*unitriangular=*/true);
  const at::Tensor state_keys = at::linalg_solve_triangular(system, key_beta * cumulative.exp().unsqueeze(-1),
                                                            /*upper=*/false, /*left=*/true, /*unitriangular=*/true);
  const at::Tensor within = at::matmul(query, key.transpose(-1, -2)) * between;  // causal, diagonal included
  const at::Tensor decayed_query = query * cumulative.exp().unsqueeze(-1);
  const at::Tensor last = cumulative.narrow(-1, chunk - 1, 1);  // [B, Hv, N, 1]
  const at::Tensor decayed_key = key * (last - cumulative).exp().unsqueeze(-1);
  const at::Tensor chunk_decay = last.exp().unsqueeze(-1);  // [B, Hv, N, 1, 1]

  at::Tensor state = at::zeros({b, hv, dk, dv}, value.options());
  std::vector<at::Tensor> outputs;
  outputs.reserve(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor fresh = corrected.select(2, i) - at::matmul(state_keys.select(2, i), state);  // [B, Hv, c, Dv]
    outputs.push_back(at::matmul(decayed_query.select(2, i), state) + at::matmul(within.select(2, i), fresh));
    state = state * chunk_decay.select(2, i) + at::matmul(decayed_key.select(2, i).transpose(-1, -2), fresh);
  }
  const at::Tensor out = at::stack(outputs, 2).reshape({b, hv, n * chunk, dv}).narrow(2, 0, t);
  return out.transpose(1, 2).to(v.scalar_type()).contiguous();  // [B, T, Hv, Dv]
}

at::Tensor gated_delta_net(const at::Tensor& x, const DeltaNetWeights& w, const ModelConfig& config, int64_t layer,
                           const at::Tensor& tokens, const LinearAdapter* adapter) {
  const DeltaNetConfig& c = config.delta_net;
  const int64_t b = x.size(0), t = x.size(1), channels = c.conv_width();
  const at::Tensor input = tokens.defined() ? x * tokens.unsqueeze(-1).to(x.scalar_type()) : x;
  const at::Tensor mixed = linear(input, w.in_qkv, {layer, Projection::delta_qkv}, adapter);  // [B, T, C]
  const at::Tensor z = linear(input, w.in_z, {layer, Projection::delta_z}, adapter);          // [B, T, Hv*Dv]
  const at::Tensor b_in = linear(input, w.in_b, {layer, Projection::delta_b}, adapter);       // [B, T, Hv]
  const at::Tensor a_in = linear(input, w.in_a, {layer, Projection::delta_a}, adapter);       // [B, T, Hv]

  // Causal depthwise convolution over time: K - 1 zeros before the first token, the first T outputs kept.
  const int64_t taps = c.conv_kernel;
  const at::Tensor convolved =
      at::silu(at::conv1d(mixed.transpose(1, 2), w.conv, /*bias=*/{}, /*stride=*/1, /*padding=*/taps - 1,
                          /*dilation=*/1, /*groups=*/channels)
                   .narrow(2, 0, t))
          .transpose(1, 2);  // [B, T, C]
  const int64_t kw = c.key_width();
  const at::Tensor q = convolved.narrow(-1, 0, kw).reshape({b, t, c.key_heads, c.key_head_dim});
  const at::Tensor k = convolved.narrow(-1, kw, kw).reshape({b, t, c.key_heads, c.key_head_dim});
  const at::Tensor v = convolved.narrow(-1, 2 * kw, c.value_width()).reshape({b, t, c.value_heads, c.value_head_dim});

  const at::ScalarType wide = at::promote_types(x.scalar_type(), at::kFloat);
  const at::Tensor beta = at::sigmoid(b_in);
  const at::Tensor g = -w.a_log.to(wide).exp() * at::softplus(a_in.to(wide) + w.dt_bias.to(wide));  // [B, T, Hv]
  const at::Tensor o = chunk_gated_delta_rule(q, k, v, g, beta);  // [B, T, Hv, Dv] in x's dtype

  // The gated RMSNorm per value head: normed in the wide type, rounded, times w in x's dtype, times silu(z) in the
  // wide type, rounded again (Qwen3NextRMSNormGated).
  const at::Tensor wide_o = o.to(wide);
  const at::Tensor normed =
      (wide_o * at::rsqrt(wide_o.pow(2).mean(-1, /*keepdim=*/true) + config.rms_norm_eps)).to(x.scalar_type());
  const at::Tensor gate = at::silu(z.reshape({b, t, c.value_heads, c.value_head_dim}).to(wide));
  const at::Tensor gated = ((w.norm * normed).to(wide) * gate).to(x.scalar_type());
  return linear(gated.reshape({b, t, c.value_width()}), w.out, {layer, Projection::delta_out}, adapter);
}

}  // namespace abmll::model
