// The fused weight-space KL and its entry gradients (see weight_kl.h). A thread block covers kTileRows output rows
// and kThreads columns: the rows' B factors are staged in shared memory once, and each thread reads its column of the
// A factors once for all the rows (src/meta/weight_kl_tile.h, whose CPU emulation the tests run), then takes the
// tile's entries one by one through src/meta/weight_kl_entry.h's arithmetic, shared with (and tested through) the CPU
// loop. Blocks run along (column tiles, row tiles).
#include "weight_kl.h"

#include "kernel_common.cuh"
#include "meta/weight_kl_entry.h"
#include "meta/weight_kl_tile.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace abmll::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRows = weight_kl::kTileRows;

void check_shape(const WeightKlShape& shape) {
  if (shape.out <= 0 || shape.in <= 0 || shape.rank <= 0)
    throw std::runtime_error("[weight_kl] O, I and R must be positive");
  if (shape.rank > weight_kl::kMaxTileRank) throw std::runtime_error("[weight_kl] rank above 256");
  if ((shape.out + kRows - 1) / kRows > 65535) throw std::runtime_error("[weight_kl] too many output rows");
}

weight_kl::TileOperands operands(const WeightKlFactors& q, const WeightKlFactors& p, const WeightKlShape& shape) {
  weight_kl::TileOperands f;
  const WeightKlFactors* side[2] = {&q, &p};
  for (int s = 0; s < 2; ++s) {
    f.b[2 * s] = side[s]->b_mu;
    f.b[2 * s + 1] = side[s]->b_sigma;
    f.a[2 * s] = side[s]->a_mu;
    f.a[2 * s + 1] = side[s]->a_sigma;
  }
  f.out = shape.out;
  f.in = shape.in;
  f.rank = shape.rank;
  return f;
}

std::size_t staged_bytes(const WeightKlShape& shape) { return 4 * kRows * shape.rank * sizeof(float); }

__device__ inline weight_kl::EntryForm entry_form(const WeightKlShape& shape) {
  return {shape.floor, shape.floor_squared, shape.softplus};
}

// The block's sums of every thread's kl and hit, written by thread 0 at the block's index (x fastest). Every thread of
// the block must call it.
__device__ void write_block_sums(double kl, long long hit, double* partial_kl, long long* partial_hits) {
  __shared__ double sums[kThreads];
  __shared__ long long hits[kThreads];
  sums[threadIdx.x] = kl;
  hits[threadIdx.x] = hit;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      sums[threadIdx.x] += sums[threadIdx.x + stride];
      hits[threadIdx.x] += hits[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const int64_t block = static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x;
    partial_kl[block] = sums[0];
    partial_hits[block] = hits[0];
  }
}

__global__ void forward_kernel(weight_kl::TileOperands f, WeightKlShape shape, double* partial_kl,
                               long long* partial_hits) {
  extern __shared__ float4 staged_storage[];  // float4: 16-byte aligned
  float* staged = reinterpret_cast<float*>(staged_storage);
  const int64_t o0 = static_cast<int64_t>(blockIdx.y) * kRows;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  weight_kl::stage_rows(f, o0, staged, threadIdx.x, kThreads);
  __syncthreads();
  double kl = 0;
  long long hit = 0;
  if (i < shape.in) {
    float acc[4][kRows];
    weight_kl::tile_column(f, staged, i, acc);
    const weight_kl::EntryForm form = entry_form(shape);
#pragma unroll
    for (int row = 0; row < kRows; ++row) {
      if (o0 + row >= shape.out) continue;  // (not a loop bound: acc's indices stay constants, in registers)
      int floored = 0;
      const float s = shape.scaling;
      kl += static_cast<double>(
          weight_kl::entry_kl(s * acc[0][row], s * acc[1][row], s * acc[2][row], s * acc[3][row], form, &floored));
      hit += floored;
    }
  }
  write_block_sums(kl, hit, partial_kl, partial_hits);
}

// Rows [row0, row0 + rows) of the entry gradients, row r of the range at (r - row0) I + i, and the rows' KL and
// hits, as forward_kernel sums them.
__global__ void entry_gradient_kernel(weight_kl::TileOperands f, WeightKlShape shape, int64_t row0, int64_t rows,
                                      const float* grad, float* g_mq, float* g_zq, float* g_zp, double* partial_kl,
                                      long long* partial_hits) {
  extern __shared__ float4 staged_storage[];
  float* staged = reinterpret_cast<float*>(staged_storage);
  const int64_t o0 = row0 + static_cast<int64_t>(blockIdx.y) * kRows;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  weight_kl::stage_rows(f, o0, staged, threadIdx.x, kThreads);
  __syncthreads();
  double kl = 0;
  long long hit = 0;
  if (i < shape.in) {  // (no early return: every thread reaches write_block_sums)
    float acc[4][kRows];
    weight_kl::tile_column(f, staged, i, acc);
    const weight_kl::EntryForm form = entry_form(shape);
    const float g = *grad, s = shape.scaling;
#pragma unroll
    for (int row = 0; row < kRows; ++row) {
      if (o0 + row >= row0 + rows) continue;
      const float mq = s * acc[0][row], zq = s * acc[1][row], mp = s * acc[2][row], zp = s * acc[3][row];
      float entry = 0;
      int floored = 0;
      const weight_kl::EntryGradients e = weight_kl::entry_kl_and_gradients(mq, zq, mp, zp, g, form, &entry, &floored);
      const int64_t at = (o0 + row - row0) * shape.in + i;
      g_mq[at] = e.mq;
      g_zq[at] = e.zq;
      g_zp[at] = e.zp;
      kl += static_cast<double>(entry);
      hit += floored;
    }
  }
  write_block_sums(kl, hit, partial_kl, partial_hits);
}

unsigned column_blocks(const WeightKlShape& shape) {
  return static_cast<unsigned>((shape.in + kThreads - 1) / kThreads);
}

}  // namespace

std::int64_t weight_kl_forward_partials(const WeightKlShape& shape) {
  return column_blocks(shape) * ((shape.out + kRows - 1) / kRows);
}

void weight_kl_forward(const WeightKlFactors& q, const WeightKlFactors& p, const WeightKlShape& shape,
                       double* partial_kl, long long* partial_hits, void* stream) {
  check_shape(shape);
  const dim3 grid(column_blocks(shape), static_cast<unsigned>((shape.out + kRows - 1) / kRows));
  forward_kernel<<<grid, kThreads, staged_bytes(shape), static_cast<cudaStream_t>(stream)>>>(
      operands(q, p, shape), shape, partial_kl, partial_hits);
  check_launch("weight_kl", "forward launch");
}

std::int64_t weight_kl_row_partials(const WeightKlShape& shape, std::int64_t rows) {
  return column_blocks(shape) * ((rows + kRows - 1) / kRows);
}

void weight_kl_entry_gradients(const WeightKlFactors& q, const WeightKlFactors& p, const WeightKlShape& shape,
                               std::int64_t row0, std::int64_t rows, const float* grad, float* g_mq, float* g_zq,
                               float* g_zp, double* partial_kl, long long* partial_hits, void* stream) {
  check_shape(shape);
  if (row0 < 0 || rows <= 0 || row0 + rows > shape.out) throw std::runtime_error("[weight_kl] bad row range");
  const dim3 grid(column_blocks(shape), static_cast<unsigned>((rows + kRows - 1) / kRows));
  entry_gradient_kernel<<<grid, kThreads, staged_bytes(shape), static_cast<cudaStream_t>(stream)>>>(
      operands(q, p, shape), shape, row0, rows, grad, g_mq, g_zq, g_zp, partial_kl, partial_hits);
  check_launch("weight_kl", "entry gradient launch");
}

}  // namespace abmll::cuda
