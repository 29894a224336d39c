// The `weight` variational family of ABMLL.md 2(b): an entry-wise Gaussian over a layer's weight update dW
// (out x in) with low-rank mean and scale,
//   M = s B_mu A_mu,   S = s B_sigma A_sigma + c            (scale form `linear`, the paper's)
//                      S = softplus(s B_sigma A_sigma) + c  (scale form `softplus`)
// where s is the LoRA scaling and c the scale floor. Nothing here keeps an out x in tensor alive across layers:
// the KL is computed tile by tile and recomputed in backward, and sampling uses the local reparameterisation.
//
// Dimension letters: O out features, I in features, R LoRA rank, N tokens.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <functional>

#include "config/experiment_config.h"

namespace abmll::meta {

// Low-rank factors of one layer's Gaussian: b_mu, b_sigma [O, R]; a_mu, a_sigma [R, I].
struct WeightGaussianFactors {
  at::Tensor b_mu, a_mu, b_sigma, a_sigma;
};

struct WeightScaleForm {
  WeightScale kind = WeightScale::linear;
  double scaling = 1;  // s: alpha / r (or alpha / sqrt(r) with rsLoRA)
  double floor = 0;    // c
};

// Which implementation weight_space_kl runs: `automatic` takes the fused CUDA kernels (weight_kl_cuda.h) for float32
// CUDA factors when they are built in and the fused CPU loop (weight_kl_cpu.h) for float32 CPU factors (and ATen
// for a differentiable backward); `aten` always the tiled ATen code, the reference of both.
enum class WeightKlBackend { automatic, aten };

// KL(q || p) summed over the O x I entries, with exact gradients to all eight factors of q and p. Computed in
// float32 (float64 for float64 inputs) in tiles of `tile_rows` output rows, recomputed in backward, so peak extra
// memory is O(tile_rows x I). Squared scales are floored at c^2 (with `linear`, S crosses zero where s B A = -c,
// and log S^2, 1/S_p^2 would blow up there); `floor_hits`, when given, receives how many entries of S_q and S_p hit
// the floor, as a 0-dim int64 tensor on the factors' device (not read back here: util/read_scalars.h). The ATen
// backward is written in differentiable ops, so second-order gradients flow through it.
at::Tensor weight_space_kl(const WeightGaussianFactors& q, const WeightGaussianFactors& p, const WeightScaleForm& form,
                           std::int64_t tile_rows = 256, at::Tensor* floor_hits = nullptr,
                           WeightKlBackend backend = WeightKlBackend::automatic);

// Which of the eight factors (q's b_mu, a_mu, b_sigma, a_sigma, then p's) get a KL gradient.
using WeightKlNeeded = std::array<bool, 8>;

// Gradients of the KL with respect to q's and p's factors (b_mu, a_mu, b_sigma, a_sigma of q, then of p) from its
// gradients at the entries: `entry_gradients(r0, r1)` returns dKL/dMq, dKL/dZq and dKL/dZp of rows [r0, r1)
// ([r1 - r0, I] each; dKL/dMp = -dKL/dMq), called once per tile of `tile_rows` rows; M = s B A turns them into
// factor gradients by GEMMs. Differentiable when the entry gradients are. Shared by every implementation's backward.
// Only the factors marked in `needed` get a gradient (the others' GEMMs are skipped; undefined tensors): a
// first-order inner step needs q's, the outer step's regulariser p's.
using WeightKlEntryGradients = std::function<std::array<at::Tensor, 3>(std::int64_t r0, std::int64_t r1)>;
std::array<at::Tensor, 8> weight_kl_factor_gradients(const WeightGaussianFactors& q, const WeightGaussianFactors& p,
                                                     double scaling, std::int64_t tile_rows,
                                                     const WeightKlEntryGradients& entry_gradients,
                                                     const WeightKlNeeded& needed);

// A KL and its gradients computed in one pass (the fused implementations', for a KL differentiated once).
struct WeightKlValueAndGradients {
  at::Tensor kl;                    // 0-dim float32
  std::array<at::Tensor, 8> grads;  // by factor, undefined where not needed
};

// The same KL from the dense O x I tensors through autograd: the reference for tests, and fine for small layers.
at::Tensor weight_space_kl_dense(const WeightGaussianFactors& q, const WeightGaussianFactors& p,
                                 const WeightScaleForm& form);

// The weight family's hyperprior term -log p(theta) (see weight_family.h) for one site's prior factors:
//   sum_oi [ M_oi^2 / (2 mean_std^2) + b0 / V_oi + (a0 - 1) log V_oi ] + O I (log(mean_std) + log(2 pi) / 2
//   - a0 log b0 + lgamma(a0)),   V = max(S^2, c^2),
// i.e. -log N(M; 0, mean_std^2) - log Gamma(1 / V; a0, b0) entry by entry. Tiled and recomputed in backward like
// weight_space_kl, with the same compute type.
at::Tensor weight_space_hyperprior(const WeightGaussianFactors& f, const WeightScaleForm& form, double mean_std,
                                   double a0, double b0, std::int64_t tile_rows = 256);
at::Tensor weight_space_hyperprior_dense(const WeightGaussianFactors& f, const WeightScaleForm& form,
                                         double mean_std, double a0, double b0);

// Dense mean M and scale S [O, I] (tests and small layers only).
at::Tensor dense_mean(const WeightGaussianFactors& f, const WeightScaleForm& form);
at::Tensor dense_scale(const WeightGaussianFactors& f, const WeightScaleForm& form);

// How output_variance computes the `linear` form: `automatic` takes whichever of the two below costs fewer
// multiply-adds for the given N, I, O, R (low_rank at 8B shapes, dense for layers a few hundred wide).
enum class VarianceRoute { automatic, low_rank, dense };

struct OutputVariance {
  at::Tensor v;       // [N, O]: sum_i x_ni^2 S_oi^2, unclamped (rounding can leave tiny negatives where S ~ 0)
  at::Tensor sum_sq;  // [N, 1]: sum_i x_ni^2
  // v again, from tensors v's graph keeps for its own backward anyway (the low-rank route's [N, P] and [O, P]
  // factors of its last product: one GEMM), differentiable as v is; empty where that would mean another pass over
  // x (dense and softplus routes). Lets a consumer that needs v's value in backward not keep v (reparam_ops.h).
  std::function<at::Tensor()> recompute;
};

// Variance of the layer's output under the local reparameterisation for input rows x [N, I] (any floating dtype;
// computed in the factors' dtype), and each row's sum of squares. `linear` writes S = B' A' with
// B' = [s B_sigma | c 1] [O, R+1] and A' = [A_sigma; 1^T] [R+1, I], so that
//   v_o = b'_o^T G b'_o,   G = A' diag(x^2) A'^T   [(R+1) x (R+1), symmetric],
// and `low_rank` computes it from G's P = (R+1)(R+2)/2 distinct entries: two GEMMs, x^2 [N, I] @ [I, P] and
// [N, P] @ [P, O], at O(N P (I + O)), exact; `dense` builds S^2 [O, I] (O(N I O)). `softplus` is always dense, with
// S^2 built for this layer only and recomputed in backward. Keeps x, not x^2, for backward (reparam_ops.h).
OutputVariance output_variance(const at::Tensor& x, const WeightGaussianFactors& f, const WeightScaleForm& form,
                               VarianceRoute route = VarianceRoute::automatic);

}  // namespace abmll::meta
