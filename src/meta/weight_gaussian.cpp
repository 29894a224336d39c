#include "meta/weight_gaussian.h"

#include "meta/gaussian.h"
#include "meta/reparam_ops.h"
#include "meta/weight_kl_cpu.h"
#include "meta/weight_kl_cuda.h"
#include "util/float32_products.h"

#include <ATen/core/grad_mode.h>

#include <ATen/TensorOperators.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/full.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/triu_indices.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/clamp_min.h>
#include <ATen/ops/where.h>
#include <ATen/ops/log.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/softplus.h>
#include <ATen/ops/square.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

namespace abmll::meta {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::ScalarType compute_type(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// Scale S from its pre-activation Z = s B_sigma A_sigma.
at::Tensor scale_of(const at::Tensor& z, WeightScale kind, double c) {
  return kind == WeightScale::linear ? z + c : at::softplus(z) + c;
}

// dS/dZ.
at::Tensor scale_slope(const at::Tensor& z, WeightScale kind) {
  return kind == WeightScale::linear ? at::ones_like(z) : at::sigmoid(z);
}

// One tile's quantities for q or p: rows [r0, r1) of M, Z, S and the floored squared scale V.
struct Tile {
  at::Tensor m, z, s, v;
};

Tile tile_of(const at::Tensor& b_mu, const at::Tensor& a_mu, const at::Tensor& b_sigma, const at::Tensor& a_sigma,
             int64_t r0, int64_t r1, const WeightScaleForm& form) {
  Tile t;
  t.m = form.scaling * at::matmul(b_mu.slice(0, r0, r1), a_mu);
  t.z = form.scaling * at::matmul(b_sigma.slice(0, r0, r1), a_sigma);
  t.s = scale_of(t.z, form.kind, form.floor);
  t.v = at::clamp_min(at::square(t.s), form.floor * form.floor);
  return t;
}

// u = Vq / Vp - 1 without cancellation: (Sq - Sp)(Sq + Sp) / Vp where neither scale is floored.
at::Tensor variance_ratio_minus_one(const Tile& q, const Tile& p, double c2) {
  const at::Tensor unfloored = (at::square(q.s) > c2) & (at::square(p.s) > c2);
  return at::where(unfloored, (q.s - p.s) * (q.s + p.s), q.v - p.v) / p.v;
}

// KL = 1/2 (u - log1p(u)) + D^2 / (2 Vp), D = Mq - Mp (see gaussian.h for why this form).
at::Tensor kl_of_tile(const Tile& q, const Tile& p, double c2) {
  return (kl_scale_term(variance_ratio_minus_one(q, p, c2)) + at::square(q.m - p.m) / (2 * p.v)).sum();
}

// The factors' gradients, then none for the other 7 arguments of TiledWeightKl::forward.
variable_list with_no_gradients_for_options(const std::array<at::Tensor, 8>& grads) {
  variable_list out(grads.begin(), grads.end());
  out.resize(15);
  return out;
}

// Which implementation TiledWeightKl runs (an int in the node's saved data).
constexpr int64_t kAten = 0, kCudaKernels = 1, kCpuLoop = 2;

// Inputs are the 8 factors (q then p, each b_mu, a_mu, b_sigma, a_sigma), already in the compute type. With a fused
// implementation, `gradients_now` (bit f for factor f, those that require grad) has the forward compute the factors'
// gradients with the value, in one pass over the entries, and the backward of a KL differentiated once (no graph)
// only scales them; a backward that builds a graph (second order) takes ATen's as before.
struct TiledWeightKl : public torch::autograd::Function<TiledWeightKl> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor qb_mu, at::Tensor qa_mu, at::Tensor qb_sig,
                            at::Tensor qa_sig, at::Tensor pb_mu, at::Tensor pa_mu, at::Tensor pb_sig,
                            at::Tensor pa_sig, double scaling, double floor, int64_t kind, int64_t tile_rows,
                            at::Tensor* floor_hits, int64_t loop, int64_t gradients_now) {
    const FullFloat32Products full_float32;  // differences of large products
    const WeightScaleForm form{static_cast<WeightScale>(kind), scaling, floor};
    std::vector<at::Tensor> saved = {qb_mu, qa_mu, qb_sig, qa_sig, pb_mu, pa_mu, pb_sig, pa_sig};
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["floor"] = floor;
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["tile_rows"] = tile_rows;
    ctx->saved_data["loop"] = loop;
    const WeightGaussianFactors q{qb_mu, qa_mu, qb_sig, qa_sig}, p{pb_mu, pa_mu, pb_sig, pa_sig};
    if (gradients_now != 0 && loop != kAten) {
      WeightKlNeeded needed;
      for (std::size_t f = 0; f < needed.size(); ++f) needed[f] = (gradients_now >> f & 1) != 0;
      WeightKlValueAndGradients both;
      if (loop == kCudaKernels) {
        both = weight_kl_cuda_value_and_gradients(q, p, form, needed, floor_hits);
      } else {
        int64_t hits = 0;
        both = weight_kl_cpu_value_and_gradients(q, p, form, tile_rows, needed, floor_hits ? &hits : nullptr);
        if (floor_hits) *floor_hits = at::scalar_tensor(hits, at::kLong);
      }
      saved.insert(saved.end(), both.grads.begin(), both.grads.end());  // factor f's gradient at 8 + f
      ctx->save_for_backward(saved);
      return both.kl;
    }
    ctx->save_for_backward(saved);
    if (loop == kCudaKernels) return weight_kl_cuda_forward(q, p, form, floor_hits);
    if (loop == kCpuLoop) {
      int64_t hits = 0;
      at::Tensor kl = weight_kl_cpu_forward(q, p, form, tile_rows, floor_hits ? &hits : nullptr);
      if (floor_hits) *floor_hits = at::scalar_tensor(hits, at::kLong);
      return kl;
    }
    const int64_t rows = qb_mu.size(0);
    at::Tensor total = at::zeros({}, qb_mu.options());
    at::Tensor hits = at::zeros({}, qb_mu.options().dtype(at::kLong));
    for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
      const int64_t r1 = std::min(rows, r0 + tile_rows);
      const Tile q = tile_of(qb_mu, qa_mu, qb_sig, qa_sig, r0, r1, form);
      const Tile p = tile_of(pb_mu, pa_mu, pb_sig, pa_sig, r0, r1, form);
      total += kl_of_tile(q, p, floor * floor);
      if (floor_hits) {
        const double c2 = floor * floor;
        hits += (at::square(q.s) < c2).sum() + (at::square(p.s) < c2).sum();
      }
    }
    if (floor_hits) *floor_hits = hits;
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const FullFloat32Products full_float32;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &qb_mu = saved[0], &qa_mu = saved[1], &qb_sig = saved[2], &qa_sig = saved[3];
    const at::Tensor &pb_mu = saved[4], &pa_mu = saved[5], &pb_sig = saved[6], &pa_sig = saved[7];
    const WeightScaleForm form{static_cast<WeightScale>(ctx->saved_data["kind"].toInt()),
                               ctx->saved_data["scaling"].toDouble(), ctx->saved_data["floor"].toDouble()};
    const int64_t tile_rows = ctx->saved_data["tile_rows"].toInt();
    const at::Tensor& g = grad_outputs[0];
    const double s = form.scaling, c2 = form.floor * form.floor;
    WeightKlNeeded needed;
    for (std::size_t f = 0; f < needed.size(); ++f) needed[f] = ctx->needs_input_grad(f);
    // The gradients the fused implementations computed with the value (saved at 8 + f) are not differentiable: a
    // backward that builds a graph (second order) takes ATen's, below.
    if (saved.size() == 16 && !at::GradMode::is_enabled()) {
      std::array<at::Tensor, 8> grads;
      for (std::size_t f = 0; f < needed.size(); ++f)
        if (needed[f] && saved[8 + f].defined()) grads[f] = saved[8 + f] * g;
      return with_no_gradients_for_options(grads);
    }
    const auto grads = weight_kl_factor_gradients(
        {qb_mu, qa_mu, qb_sig, qa_sig}, {pb_mu, pa_mu, pb_sig, pa_sig}, s, tile_rows,
        [&](int64_t r0, int64_t r1) -> std::array<at::Tensor, 3> {
          const Tile q = tile_of(qb_mu, qa_mu, qb_sig, qa_sig, r0, r1, form);
          const Tile p = tile_of(pb_mu, pa_mu, pb_sig, pa_sig, r0, r1, form);
          const at::Tensor d = q.m - p.m;
          const at::Tensor u = variance_ratio_minus_one(q, p, c2);
          // KL = 1/2 (u - log1p(u)) + D^2 / (2 Vp), u = Vq / Vp - 1, V = max(S^2, c^2):
          // dKL/dVq = u / (2 Vq), dKL/dVp = -(u + D^2 / Vp) / (2 Vp), both free of cancellation.
          const at::Tensor g_vq = g * 0.5 * u / q.v;
          const at::Tensor g_vp = g * -0.5 * (u + at::square(d) / p.v) / p.v;
          // dV/dZ = 2 S dS/dZ where S^2 is above the floor, 0 where the floor holds.
          return {g * d / p.v, g_vq * 2 * q.s * scale_slope(q.z, form.kind) * (at::square(q.s) > c2),
                  g_vp * 2 * p.s * scale_slope(p.z, form.kind) * (at::square(p.s) > c2)};
        },
        needed);
    return with_no_gradients_for_options(grads);
  }
};

// The hyperprior of one prior's factors (see weight_space_hyperprior), without its constant. Inputs: b_mu, a_mu,
// b_sigma, a_sigma in the compute type.
struct TiledWeightHyperprior : public torch::autograd::Function<TiledWeightHyperprior> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor b_mu, at::Tensor a_mu, at::Tensor b_sig,
                            at::Tensor a_sig, double scaling, double floor, int64_t kind, int64_t tile_rows,
                            double mean_std, double a0, double b0) {
    const WeightScaleForm form{static_cast<WeightScale>(kind), scaling, floor};
    at::Tensor total = at::zeros({}, b_mu.options());
    for (int64_t r0 = 0; r0 < b_mu.size(0); r0 += tile_rows) {
      const Tile t = tile_of(b_mu, a_mu, b_sig, a_sig, r0, std::min(b_mu.size(0), r0 + tile_rows), form);
      total += (at::square(t.m) / (2 * mean_std * mean_std) + b0 / t.v + (a0 - 1) * at::log(t.v)).sum();
    }
    ctx->save_for_backward({b_mu, a_mu, b_sig, a_sig});
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["floor"] = floor;
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["tile_rows"] = tile_rows;
    ctx->saved_data["mean_std"] = mean_std;
    ctx->saved_data["a0"] = a0;
    ctx->saved_data["b0"] = b0;
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &b_mu = saved[0], &a_mu = saved[1], &b_sig = saved[2], &a_sig = saved[3];
    const WeightScaleForm form{static_cast<WeightScale>(ctx->saved_data["kind"].toInt()),
                               ctx->saved_data["scaling"].toDouble(), ctx->saved_data["floor"].toDouble()};
    const int64_t tile_rows = ctx->saved_data["tile_rows"].toInt();
    const double mean_std = ctx->saved_data["mean_std"].toDouble(), a0 = ctx->saved_data["a0"].toDouble(),
                 b0 = ctx->saved_data["b0"].toDouble();
    const at::Tensor& g = grad_outputs[0];
    const double s = form.scaling, c2 = form.floor * form.floor;
    std::vector<at::Tensor> gb_mu, gb_sig;
    at::Tensor ga_mu = at::zeros_like(a_mu), ga_sig = at::zeros_like(a_sig);
    for (int64_t r0 = 0; r0 < b_mu.size(0); r0 += tile_rows) {
      const int64_t r1 = std::min(b_mu.size(0), r0 + tile_rows);
      const Tile t = tile_of(b_mu, a_mu, b_sig, a_sig, r0, r1, form);
      // d/dM = M / std^2; d/dV = -b0 / V^2 + (a0 - 1) / V; dV/dZ = 2 S dS/dZ above the floor, 0 on it.
      const at::Tensor g_m = g * t.m / (mean_std * mean_std);
      const at::Tensor g_v = g * ((a0 - 1) / t.v - b0 / at::square(t.v));
      const at::Tensor g_z = g_v * 2 * t.s * scale_slope(t.z, form.kind) * (at::square(t.s) > c2);
      gb_mu.push_back(s * at::matmul(g_m, a_mu.t()));
      gb_sig.push_back(s * at::matmul(g_z, a_sig.t()));
      ga_mu = ga_mu + s * at::matmul(b_mu.slice(0, r0, r1).t(), g_m);
      ga_sig = ga_sig + s * at::matmul(b_sig.slice(0, r0, r1).t(), g_z);
    }
    return {at::cat(gb_mu, 0), ga_mu, at::cat(gb_sig, 0), ga_sig, at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// S^2 for the softplus form, built for one layer in forward and recomputed in backward. Inputs: x [N, I] (any
// floating dtype, kept as given), b_sigma [O, R], a_sigma [R, I]; output v = x^2 (S^2)^T [N, O] in the factors'
// dtype.
struct SoftplusVariance : public torch::autograd::Function<SoftplusVariance> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& b_sig,
                            const at::Tensor& a_sig, double scaling, double floor) {
    const at::Tensor z = scaling * at::matmul(b_sig, a_sig);
    const at::Tensor s2 = at::square(at::softplus(z) + floor);
    ctx->save_for_backward({x, b_sig, a_sig});
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["floor"] = floor;
    return at::matmul(at::square(x.to(b_sig.scalar_type())), s2.t());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &b_sig = saved[1], &a_sig = saved[2];
    const double scaling = ctx->saved_data["scaling"].toDouble(), floor = ctx->saved_data["floor"].toDouble();
    const at::Tensor& gv = grad_outputs[0];  // [N, O]
    const at::Tensor xc = x.to(b_sig.scalar_type());
    const at::Tensor z = scaling * at::matmul(b_sig, a_sig);
    const at::Tensor s = at::softplus(z) + floor;
    const at::Tensor g_x = (2 * xc * at::matmul(gv, at::square(s))).to(x.scalar_type());  // [N, I]
    const at::Tensor g_z = at::matmul(gv.t(), at::square(xc)) * 2 * s * at::sigmoid(z);    // [O, I]
    return {g_x, scaling * at::matmul(g_z, a_sig.t()), scaling * at::matmul(b_sig.t(), g_z), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor dense_mean(const WeightGaussianFactors& f, const WeightScaleForm& form) {
  return form.scaling * at::matmul(f.b_mu, f.a_mu);
}

at::Tensor dense_scale(const WeightGaussianFactors& f, const WeightScaleForm& form) {
  return scale_of(form.scaling * at::matmul(f.b_sigma, f.a_sigma), form.kind, form.floor);
}

std::array<at::Tensor, 8> weight_kl_factor_gradients(const WeightGaussianFactors& q, const WeightGaussianFactors& p,
                                                     double scaling, std::int64_t tile_rows,
                                                     const WeightKlEntryGradients& entry_gradients,
                                                     const WeightKlNeeded& needed) {
  const double s = scaling;
  // Per factor (q's b_mu, a_mu, b_sigma, a_sigma, then p's): the other factor of its product, the entry gradient
  // that reaches it and its coefficient (dMp = -dMq).
  const at::Tensor* other[8] = {&q.a_mu, &q.b_mu, &q.a_sigma, &q.b_sigma, &p.a_mu, &p.b_mu, &p.a_sigma, &p.b_sigma};
  const int entry[8] = {0, 0, 1, 1, 0, 0, 2, 2};
  const double coefficient[8] = {s, s, s, s, -s, -s, s, s};
  std::vector<at::Tensor> b_tiles[8];  // gradients of the B factors (even indices), assembled from row tiles
  std::array<at::Tensor, 8> grads;
  for (int f = 1; f < 8; f += 2)
    if (needed[f]) grads[f] = at::zeros_like(*other[f - 1]);
  const int64_t rows = q.b_mu.size(0);
  for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
    const int64_t r1 = std::min(rows, r0 + tile_rows);
    const std::array<at::Tensor, 3> g = entry_gradients(r0, r1);  // dMq, dZq, dZp
    // M = s B A: dB_rows = s dM A^T, dA += s B_rows^T dM; the same for Z with the sigma factors. (Out of place,
    // so that a differentiable backward stays differentiable.)
    for (int f = 0; f < 8; f += 2) {
      const at::Tensor& g_entry = g[entry[f]];
      if (needed[f]) b_tiles[f].push_back(coefficient[f] * at::matmul(g_entry, other[f]->t()));
      if (needed[f + 1])
        grads[f + 1] = grads[f + 1] + coefficient[f + 1] * at::matmul(other[f + 1]->slice(0, r0, r1).t(), g_entry);
    }
  }
  for (int f = 0; f < 8; f += 2)
    if (needed[f]) grads[f] = at::cat(b_tiles[f]);
  return grads;
}

at::Tensor weight_space_kl(const WeightGaussianFactors& q, const WeightGaussianFactors& p, const WeightScaleForm& form,
                           std::int64_t tile_rows, at::Tensor* floor_hits, WeightKlBackend backend) {
  const at::ScalarType type = compute_type(q.b_mu);
  auto w = [type](const at::Tensor& t) { return t.to(type); };
  const WeightGaussianFactors qc{w(q.b_mu), w(q.a_mu), w(q.b_sigma), w(q.a_sigma)};
  int64_t loop = kAten;
  if (backend == WeightKlBackend::automatic)
    loop = weight_kl_cuda_applies(qc) ? kCudaKernels : weight_kl_cpu_applies(qc) ? kCpuLoop : kAten;
  const WeightGaussianFactors pc{w(p.b_mu), w(p.a_mu), w(p.b_sigma), w(p.a_sigma)};
  // A fused implementation computes the gradients of the factors that will want them with the value.
  int64_t gradients_now = 0;
  if (loop != kAten && at::GradMode::is_enabled()) {
    const at::Tensor* factors[8] = {&qc.b_mu, &qc.a_mu, &qc.b_sigma, &qc.a_sigma,
                                    &pc.b_mu, &pc.a_mu, &pc.b_sigma, &pc.a_sigma};
    for (int f = 0; f < 8; ++f)
      if (factors[f]->requires_grad()) gradients_now |= int64_t{1} << f;
  }
  return TiledWeightKl::apply(qc.b_mu, qc.a_mu, qc.b_sigma, qc.a_sigma, pc.b_mu, pc.a_mu, pc.b_sigma, pc.a_sigma,
                              form.scaling, form.floor, static_cast<int64_t>(form.kind),
                              std::max<std::int64_t>(1, tile_rows), floor_hits, loop, gradients_now);
}

at::Tensor weight_space_kl_dense(const WeightGaussianFactors& q, const WeightGaussianFactors& p,
                                 const WeightScaleForm& form) {
  const double c2 = form.floor * form.floor;
  const at::Tensor vq = at::clamp_min(at::square(dense_scale(q, form)), c2);
  const at::Tensor vp = at::clamp_min(at::square(dense_scale(p, form)), c2);
  const at::Tensor d2 = at::square(dense_mean(q, form) - dense_mean(p, form));
  return (0.5 * (at::log(vp) - at::log(vq)) + (vq + d2) / (2 * vp) - 0.5).sum();
}

static double hyperprior_constant(double mean_std, double a0, double b0) {
  return std::log(mean_std) + 0.5 * std::log(2 * M_PI) - a0 * std::log(b0) + std::lgamma(a0);
}

at::Tensor weight_space_hyperprior(const WeightGaussianFactors& f, const WeightScaleForm& form, double mean_std,
                                   double a0, double b0, std::int64_t tile_rows) {
  const at::ScalarType type = compute_type(f.b_mu);
  auto w = [type](const at::Tensor& t) { return t.to(type); };
  const at::Tensor variable =
      TiledWeightHyperprior::apply(w(f.b_mu), w(f.a_mu), w(f.b_sigma), w(f.a_sigma), form.scaling, form.floor,
                                   static_cast<int64_t>(form.kind), std::max<std::int64_t>(1, tile_rows), mean_std,
                                   a0, b0);
  const double entries = static_cast<double>(f.b_mu.size(0)) * static_cast<double>(f.a_mu.size(1));
  return variable + entries * hyperprior_constant(mean_std, a0, b0);
}

at::Tensor weight_space_hyperprior_dense(const WeightGaussianFactors& f, const WeightScaleForm& form,
                                         double mean_std, double a0, double b0) {
  const at::Tensor m = dense_mean(f, form);
  const at::Tensor v = at::clamp_min(at::square(dense_scale(f, form)), form.floor * form.floor);
  return (at::square(m) / (2 * mean_std * mean_std) + b0 / v + (a0 - 1) * at::log(v)).sum() +
         static_cast<double>(m.numel()) * hyperprior_constant(mean_std, a0, b0);
}

OutputVariance output_variance(const at::Tensor& x, const WeightGaussianFactors& f, const WeightScaleForm& form,
                               VarianceRoute route) {
  const auto options = f.a_sigma.options();
  const int64_t n = x.size(0), in = f.a_sigma.size(1), out = f.b_sigma.size(0), r1 = f.a_sigma.size(0) + 1;
  if (form.kind == WeightScale::softplus)
    return {SoftplusVariance::apply(x, f.b_sigma, f.a_sigma, form.scaling, form.floor),
            squared_matmul(x, at::ones({in, 1}, options)), /*recompute=*/{}};
  const int64_t pairs = r1 * (r1 + 1) / 2;
  // B' [O, R+1] and A' [R+1, I] (see the header): S = B' A'.
  const at::Tensor b1 = at::cat({form.scaling * f.b_sigma, at::full({out, 1}, form.floor, options)}, 1);
  const at::Tensor a1 = at::cat({f.a_sigma, at::ones({1, in}, options)}, 0);
  if (route == VarianceRoute::automatic) {
    // Multiply-adds of each route (forward; backward scales both alike).
    const double low_rank = static_cast<double>(n + 1) * static_cast<double>(pairs) * static_cast<double>(in + out);
    const double dense = static_cast<double>(n + r1) * static_cast<double>(in) * static_cast<double>(out);
    route = dense < low_rank ? VarianceRoute::dense : VarianceRoute::low_rank;
  }
  // Both routes start with x^2 @ [M | 1]: the last column gives sum_i x_i^2.
  const at::Tensor ones = at::ones({in, 1}, options);
  if (route == VarianceRoute::dense) {
    const at::Tensor y = squared_matmul(x, at::cat({at::square(at::matmul(b1, a1)).t(), ones}, 1));  // [N, O + 1]
    return {y.narrow(1, 0, out), y.narrow(1, out, 1), /*recompute=*/{}};
  }
  // Pairs r <= t of G's rows: K[i, p] = A'_r,i A'_t,i and W[o, p] = w_p b'_o,r b'_o,t, with w_p = 2 off the
  // diagonal (G_rt = G_tr counted once), so that v = (x^2 K) W^T.
  const at::Tensor pair = at::triu_indices(r1, r1, 0, at::TensorOptions().dtype(at::kLong).device(x.device()));
  const at::Tensor first = pair[0], second = pair[1];
  const at::Tensor k = pair_products(a1, first, second).t();                           // [I, P]
  const at::Tensor twice = at::where(first == second, 1.0, 2.0).to(b1.scalar_type());  // [P]
  const at::Tensor w = pair_products(b1.t(), first, second).t() * twice;               // [O, P]
  const at::Tensor y = squared_matmul(x, at::cat({k, ones}, 1));                         // [N, P + 1]
  const at::Tensor by_pair = y.narrow(1, 0, pairs);
  return {at::matmul(by_pair, w.t()), y.narrow(1, pairs, 1), [by_pair, w] { return at::matmul(by_pair, w.t()); }};
}

}  // namespace abmll::meta
