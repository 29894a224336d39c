// How the weight KL's CUDA kernels (cuda/weight_kl.cu) form the entries' means and scale pre-activations, M = B_mu
// A_mu and Z = B_sigma A_sigma of q and p (before the scaling s), for a tile of kTileRows output rows: the tile's rows
// of the four B factors are staged once per thread block (stage_rows), then each thread takes one column i and reads
// that column of the four A factors once for all the tile's rows (tile_column). A thread per entry would read the A
// column again for every row: O x I x 4R floats per pass through L2, about 4 GB for a 4096 x 4096 layer at rank 16,
// against 1/kTileRows of that here. Plain functions of their arguments, so the CPU tests run them in the kernels'
// order over every (block, thread) and check the tiling itself (tails of rows, columns and ranks).
#pragma once

#include <cmath>
#include <cstdint>

#include "util/host_device.h"

namespace abmll::weight_kl {

constexpr int kTileRows = 8;
constexpr std::int64_t kMaxTileRank = 256;  // staged rows: 4 x kTileRows x R floats of shared memory (32 KB at 256)

// The four matrices in the order the tile keeps them: q's mean and scale, then p's.
struct TileOperands {
  const float* b[4];  // b_mu of q, b_sigma of q, b_mu of p, b_sigma of p: [O, R] row-major
  const float* a[4];  // the matching A factors: [R, I] row-major
  std::int64_t out = 0, in = 0, rank = 0;
};

// Entries [0, 4 kTileRows R) of `staged` ([4][kTileRows][R]) from rows [o0, o0 + kTileRows) of the B factors, zero
// past row O; this thread copies entries thread, thread + threads, ...
ABMLL_HOST_DEVICE inline void stage_rows(const TileOperands& f, std::int64_t o0, float* staged, int thread,
                                         int threads) {
  const std::int64_t per_matrix = kTileRows * f.rank;
  ABMLL_UNROLL
  for (int k = 0; k < 4; ++k) {  // (k a constant in device code: f.b stays in parameter space)
    for (std::int64_t e = thread; e < per_matrix; e += threads) {
      const std::int64_t row = e / f.rank, r = e % f.rank;
      staged[k * per_matrix + e] = o0 + row < f.out ? f.b[k][(o0 + row) * f.rank + r] : 0.f;
    }
  }
}

// acc[k][row] = sum over r of staged[k][row][r] a[k][r, i] for column i < I, accumulated in order of r by fused
// multiply-adds (the order of the former one-thread-per-entry kernel).
ABMLL_HOST_DEVICE inline void tile_column(const TileOperands& f, const float* staged, std::int64_t i,
                                          float acc[4][kTileRows]) {
  ABMLL_UNROLL
  for (int k = 0; k < 4; ++k) {
    ABMLL_UNROLL
    for (int row = 0; row < kTileRows; ++row) acc[k][row] = 0.f;
  }
  const std::int64_t rank = f.rank, in = f.in;
  std::int64_t r = 0;
#ifdef __CUDA_ARCH__
  if (rank % 4 == 0) {  // staged rows 16-byte aligned: four ranks per shared-memory read
    for (; r < rank; r += 4) {
      float a[4][4];
#pragma unroll
      for (int k = 0; k < 4; ++k)
#pragma unroll
        for (int c = 0; c < 4; ++c) a[k][c] = __ldg(f.a[k] + (r + c) * in + i);
#pragma unroll
      for (int k = 0; k < 4; ++k)
#pragma unroll
        for (int row = 0; row < kTileRows; ++row) {
          const float4 b = *reinterpret_cast<const float4*>(staged + (k * kTileRows + row) * rank + r);
          acc[k][row] = fmaf(b.x, a[k][0], acc[k][row]);
          acc[k][row] = fmaf(b.y, a[k][1], acc[k][row]);
          acc[k][row] = fmaf(b.z, a[k][2], acc[k][row]);
          acc[k][row] = fmaf(b.w, a[k][3], acc[k][row]);
        }
    }
  }
#endif
  for (; r < rank; ++r) {
    float a[4];
    ABMLL_UNROLL
    for (int k = 0; k < 4; ++k) a[k] = f.a[k][r * in + i];
    ABMLL_UNROLL
    for (int k = 0; k < 4; ++k) {
      ABMLL_UNROLL
      for (int row = 0; row < kTileRows; ++row)
        acc[k][row] = fmaf(staged[(k * kTileRows + row) * rank + r], a[k], acc[k][row]);
    }
  }
}

}  // namespace abmll::weight_kl
