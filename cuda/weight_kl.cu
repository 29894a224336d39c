// The fused weight-space KL and its entry gradients (see weight_kl.h). One thread per entry (o, i): threads of a
// block run along i (coalesced reads of the A factors; the B row is the same for the whole block), blocks along
// (i tiles, rows). Entry quantities are recomputed from the factors (4 R multiply-adds per entry and Gaussian); the
// entry's arithmetic is src/meta/weight_kl_entry.h, shared with (and tested through) the CPU loop.
#include "weight_kl.h"

#include "kernel_common.cuh"
#include "meta/weight_kl_entry.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace abmll::cuda {
namespace {

constexpr int kThreads = 256;

void check_shape(const WeightKlShape& shape) {
  if (shape.out <= 0 || shape.in <= 0 || shape.rank <= 0)
    throw std::runtime_error("[weight_kl] O, I and R must be positive");
  if (shape.out > 65535) throw std::runtime_error("[weight_kl] more than 65535 output rows per launch");
}

// Entry (o, i)'s mean M and scale pre-activation Z, from the factors (R multiply-adds each).
struct EntryInputs {
  float m, z;
};

__device__ inline EntryInputs entry_inputs(const WeightKlFactors& f, const WeightKlShape& shape, int64_t o, int64_t i) {
  float m = 0, z = 0;
  const float* bm = f.b_mu + o * shape.rank;
  const float* bs = f.b_sigma + o * shape.rank;
  for (int64_t r = 0; r < shape.rank; ++r) {
    m = fmaf(bm[r], f.a_mu[r * shape.in + i], m);
    z = fmaf(bs[r], f.a_sigma[r * shape.in + i], z);
  }
  return {shape.scaling * m, shape.scaling * z};
}

__global__ void forward_kernel(WeightKlFactors q, WeightKlFactors p, WeightKlShape shape, double* partial_kl,
                               long long* partial_hits) {
  __shared__ double sums[kThreads];
  __shared__ long long hits[kThreads];
  const int64_t o = blockIdx.y;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  double kl = 0;
  long long hit = 0;
  if (i < shape.in) {
    const EntryInputs eq = entry_inputs(q, shape, o, i), ep = entry_inputs(p, shape, o, i);
    int floored = 0;
    kl = static_cast<double>(weight_kl::entry_kl(eq.m, eq.z, ep.m, ep.z, {shape.floor, shape.softplus}, &floored));
    hit = floored;
  }
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
    const int64_t block = o * gridDim.x + blockIdx.x;
    partial_kl[block] = sums[0];
    partial_hits[block] = hits[0];
  }
}

__global__ void entry_gradient_kernel(WeightKlFactors q, WeightKlFactors p, WeightKlShape shape, int64_t row0,
                                      const float* grad, float* g_mq, float* g_zq, float* g_zp) {
  const int64_t row = blockIdx.y;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= shape.in) return;
  const int64_t o = row0 + row;
  const EntryInputs eq = entry_inputs(q, shape, o, i), ep = entry_inputs(p, shape, o, i);
  const weight_kl::EntryGradients e =
      weight_kl::entry_gradients(eq.m, eq.z, ep.m, ep.z, *grad, {shape.floor, shape.softplus});
  const int64_t at = row * shape.in + i;
  g_mq[at] = e.mq;
  g_zq[at] = e.zq;
  g_zp[at] = e.zp;
}

}  // namespace

std::int64_t weight_kl_forward_partials(const WeightKlShape& shape) {
  return (shape.in + kThreads - 1) / kThreads * shape.out;
}

void weight_kl_forward(const WeightKlFactors& q, const WeightKlFactors& p, const WeightKlShape& shape,
                       double* partial_kl, long long* partial_hits, void* stream) {
  check_shape(shape);
  const dim3 grid(static_cast<unsigned>((shape.in + kThreads - 1) / kThreads), static_cast<unsigned>(shape.out));
  forward_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(q, p, shape, partial_kl, partial_hits);
  check_launch("weight_kl", "forward launch");
}

void weight_kl_entry_gradients(const WeightKlFactors& q, const WeightKlFactors& p, const WeightKlShape& shape,
                               std::int64_t row0, std::int64_t rows, const float* grad, float* g_mq, float* g_zq,
                               float* g_zp, void* stream) {
  check_shape(shape);
  if (row0 < 0 || rows <= 0 || row0 + rows > shape.out) throw std::runtime_error("[weight_kl] bad row range");
  const dim3 grid(static_cast<unsigned>((shape.in + kThreads - 1) / kThreads), static_cast<unsigned>(rows));
  entry_gradient_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(q, p, shape, row0, grad, g_mq,
                                                                                  g_zq, g_zp);
  check_launch("weight_kl", "entry gradient launch");
}

}  // namespace abmll::cuda
