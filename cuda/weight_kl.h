// Host entry points of the fused weight-space KL of ABMLL.md 2(b) (the `weight` family), callable from code built
// without nvcc. The ATen implementation in src/meta/weight_gaussian.cpp is the reference; src/meta/weight_kl_cuda.cpp
// checks tensors and calls these.
//
// For q and p, each given by four row-major float32 device matrices b_mu, b_sigma [O, R] and a_mu, a_sigma [R, I],
// entry (o, i) has M = s b_mu[o] . a_mu[:, i], Z = s b_sigma[o] . a_sigma[:, i], S = Z + c (linear) or
// softplus(Z) + c, V = max(S^2, c^2), and
//   KL_oi = 1/2 (u - log1p(u)) + (Mq - Mp)^2 / (2 Vp),   u = Vq / Vp - 1 (computed without cancellation).
// Every entry is computed from the factors inside the kernels (src/meta/weight_kl_tile.h: a block's rows share each
// read of the A factors): no O x I tensor is ever stored by the forward, and the backward stores only a tile of rows
// of its three entry gradients (the factor gradients are then GEMMs). R <= 256 (weight_kl::kMaxTileRank).
#pragma once

#include <cstdint>

namespace abmll::cuda {

struct WeightKlFactors {
  const float* b_mu;     // [O, R]
  const float* a_mu;     // [R, I]
  const float* b_sigma;  // [O, R]
  const float* a_sigma;  // [R, I]
};

struct WeightKlShape {
  std::int64_t out = 0, in = 0, rank = 0;  // O, I, R
  float scaling = 1;                       // s
  float floor = 0;                         // c
  float floor_squared = 0;                 // c^2, rounded once from double
  bool softplus = false;                   // scale form
};

// Number of partial sums weight_kl_forward writes (one per thread block).
std::int64_t weight_kl_forward_partials(const WeightKlShape& shape);

// Writes per-block partial sums of KL_oi (accumulated in double) and counts of entries of S_q and S_p with
// S^2 < c^2, weight_kl_forward_partials(shape) of each, on `stream` (a cudaStream_t). Throws std::runtime_error
// for a bad shape or a failed launch.
void weight_kl_forward(const WeightKlFactors& q, const WeightKlFactors& p, const WeightKlShape& shape,
                       double* partial_kl, long long* partial_hits, void* stream);

// For rows [row0, row0 + rows) and the incoming gradient *grad (a device scalar), writes the entry gradients
// dKL/dMq (dKL/dMp is its negative), dKL/dZq and dKL/dZp, each [rows, I] row-major, and the rows' KL and floor hits
// as weight_kl_forward writes them, in weight_kl_row_partials(shape, rows) partial sums each (the value and its
// gradients in one pass), on `stream`.
void weight_kl_entry_gradients(const WeightKlFactors& q, const WeightKlFactors& p, const WeightKlShape& shape,
                               std::int64_t row0, std::int64_t rows, const float* grad, float* g_mq, float* g_zq,
                               float* g_zp, double* partial_kl, long long* partial_hits, void* stream);
std::int64_t weight_kl_row_partials(const WeightKlShape& shape, std::int64_t rows);

}  // namespace abmll::cuda
