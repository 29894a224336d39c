// The fused weight-space KL and its entry gradients (see weight_kl.h). One thread per entry (o, i): threads of a
// block run along i (coalesced reads of the A factors; the B row is the same for the whole block), blocks along
// (i tiles, rows). Entry quantities are recomputed from the factors (4 R multiply-adds per entry and Gaussian).
#include "weight_kl.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace abmll::cuda {
namespace {

constexpr int kThreads = 256;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("[weight_kl] ") + what + ": " + cudaGetErrorString(status));
}

void check_shape(const WeightKlShape& shape) {
  if (shape.out <= 0 || shape.in <= 0 || shape.rank <= 0)
    throw std::runtime_error("[weight_kl] O, I and R must be positive");
  if (shape.out > 65535) throw std::runtime_error("[weight_kl] more than 65535 output rows per launch");
}

struct EntryGaussian {
  float m, z, s, v;
};

__device__ inline EntryGaussian entry_of(const WeightKlFactors& f, const WeightKlShape& shape, int64_t o, int64_t i) {
  float m = 0, z = 0;
  const float* bm = f.b_mu + o * shape.rank;
  const float* bs = f.b_sigma + o * shape.rank;
  for (int64_t r = 0; r < shape.rank; ++r) {
    m = fmaf(bm[r], f.a_mu[r * shape.in + i], m);
    z = fmaf(bs[r], f.a_sigma[r * shape.in + i], z);
  }
  EntryGaussian e;
  e.m = shape.scaling * m;
  e.z = shape.scaling * z;
  // softplus as ATen computes it (threshold 20).
  e.s = (shape.softplus ? (e.z > 20.f ? e.z : log1pf(expf(e.z))) : e.z) + shape.floor;
  e.v = fmaxf(e.s * e.s, shape.floor * shape.floor);
  return e;
}

// u = Vq / Vp - 1 without cancellation where neither scale is floored.
__device__ inline float ratio_minus_one(const EntryGaussian& q, const EntryGaussian& p, float c2) {
  const bool unfloored = q.s * q.s > c2 && p.s * p.s > c2;
  return (unfloored ? (q.s - p.s) * (q.s + p.s) : q.v - p.v) / p.v;
}

// 1/2 (u - log1p(u)): its series where |u| < 1e-2 (as src/meta/gaussian.cpp's kl_scale_term).
__device__ inline float scale_term(float u) {
  if (fabsf(u) < 1e-2f)
    return 0.5f * u * u * (0.5f + u * (-1.f / 3 + u * (0.25f + u * (-0.2f + u * (1.f / 6 - u / 7)))));
  return 0.5f * (u - log1pf(u));
}

__global__ void forward_kernel(WeightKlFactors q, WeightKlFactors p, WeightKlShape shape, double* partial_kl,
                               long long* partial_hits) {
  __shared__ double sums[kThreads];
  __shared__ long long hits[kThreads];
  const int64_t o = blockIdx.y;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const float c2 = shape.floor * shape.floor;
  double kl = 0;
  long long hit = 0;
  if (i < shape.in) {
    const EntryGaussian eq = entry_of(q, shape, o, i), ep = entry_of(p, shape, o, i);
    const float d = eq.m - ep.m;
    kl = static_cast<double>(scale_term(ratio_minus_one(eq, ep, c2))) + static_cast<double>(d * d / (2 * ep.v));
    hit = (eq.s * eq.s < c2 ? 1 : 0) + (ep.s * ep.s < c2 ? 1 : 0);
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
  const float c2 = shape.floor * shape.floor, g = *grad;
  const EntryGaussian eq = entry_of(q, shape, o, i), ep = entry_of(p, shape, o, i);
  const float d = eq.m - ep.m;
  const float u = ratio_minus_one(eq, ep, c2);
  // dKL/dVq = u / (2 Vq), dKL/dVp = -(u + D^2 / Vp) / (2 Vp); dV/dZ = 2 S dS/dZ above the floor, 0 on it.
  const float g_vq = g * 0.5f * u / eq.v;
  const float g_vp = -g * 0.5f * (u + d * d / ep.v) / ep.v;
  auto slope = [&](float z) { return shape.softplus ? 1.f / (1.f + expf(-z)) : 1.f; };
  const int64_t at = row * shape.in + i;
  g_mq[at] = g * d / ep.v;
  g_zq[at] = eq.s * eq.s > c2 ? g_vq * 2 * eq.s * slope(eq.z) : 0.f;
  g_zp[at] = ep.s * ep.s > c2 ? g_vp * 2 * ep.s * slope(ep.z) : 0.f;
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
  check(cudaGetLastError(), "forward launch");
}

void weight_kl_entry_gradients(const WeightKlFactors& q, const WeightKlFactors& p, const WeightKlShape& shape,
                               std::int64_t row0, std::int64_t rows, const float* grad, float* g_mq, float* g_zq,
                               float* g_zp, void* stream) {
  check_shape(shape);
  if (row0 < 0 || rows <= 0 || row0 + rows > shape.out) throw std::runtime_error("[weight_kl] bad row range");
  const dim3 grid(static_cast<unsigned>((shape.in + kThreads - 1) / kThreads), static_cast<unsigned>(rows));
  entry_gradient_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(q, p, shape, row0, grad, g_mq,
                                                                                  g_zq, g_zp);
  check(cudaGetLastError(), "entry gradient launch");
}

}  // namespace abmll::cuda
