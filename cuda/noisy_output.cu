// The fused noisy output and its backward (see noisy_output.h). One thread block per row (b, t): its threads run
// along the row's O entries (coalesced), and in backward reduce the row's shares of the bound's gradient in shared
// memory. One pass over each [B, T, O] tensor, where the chain of ATen ops makes about six forward and twenty
// backward.
#include "noisy_output.h"

#include "meta/noisy_output_entry.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace abmll::cuda {
namespace {

constexpr int kThreads = 256;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("[noisy_output] ") + what + ": " + cudaGetErrorString(status));
}

void check_shape(const NoisyOutputShape& shape) {
  if (shape.batch < 0 || shape.time < 0 || shape.out <= 0)
    throw std::runtime_error("[noisy_output] B and T must be non-negative and O positive");
  if (shape.batch * shape.time > 0x7fffffffLL) throw std::runtime_error("[noisy_output] more than 2^31 - 1 rows");
}

template <class T>
__device__ inline T* row_of(NoisyRows<T> rows, int64_t b, int64_t t) {
  return rows.data + b * rows.batch_stride + t * rows.time_stride;
}

__device__ inline void store(float* p, float x) { *p = x; }
__device__ inline void store(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }
__device__ inline void store(__half* p, float x) { *p = __float2half_rn(x); }
__device__ inline float load(const float* p) { return *p; }
__device__ inline float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ inline float load(const __half* p) { return __half2float(*p); }

template <class Out>
__global__ void forward_kernel(NoisyOutputShape shape, NoisyRows<const float> mean, NoisyRows<const float> v,
                               NoisyRows<const float> bound, NoisyRows<const float> noise, Out* out) {
  const int64_t row = blockIdx.x, b = row / shape.time, t = row % shape.time;
  const float* m = row_of(mean, b, t);
  const float* vr = row_of(v, b, t);
  const float* e = row_of(noise, b, t);
  const float bo = *row_of(bound, b, t);
  Out* y = out + row * shape.out;
  for (int64_t o = threadIdx.x; o < shape.out; o += kThreads) store(y + o, noisy_output::value(m[o], vr[o], bo, e[o]));
}

template <class G>
__global__ void backward_kernel(NoisyOutputShape shape, NoisyRows<const G> g, NoisyRows<const float> v,
                                NoisyRows<const float> bound, NoisyRows<const float> noise, float* g_mean,
                                float* g_v, float* g_bound) {
  __shared__ float shares[kThreads];
  const int64_t row = blockIdx.x, b = row / shape.time, t = row % shape.time;
  const G* gr = row_of(g, b, t);
  const float* vr = row_of(v, b, t);
  const float* e = row_of(noise, b, t);
  const float bo = *row_of(bound, b, t);
  float share = 0;
  for (int64_t o = threadIdx.x; o < shape.out; o += kThreads) {
    const float go = load(gr + o);
    const noisy_output::EntryGradient d = noisy_output::gradient(go, vr[o], bo, e[o]);
    g_v[row * shape.out + o] = d.v;
    if (g_mean) g_mean[row * shape.out + o] = go;
    share += d.bound;
  }
  shares[threadIdx.x] = share;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shares[threadIdx.x] += shares[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) g_bound[row] = shares[0];
}

template <class T>
NoisyRows<const T> as(NoisyRows<const void> rows) {
  return {static_cast<const T*>(rows.data), rows.batch_stride, rows.time_stride};
}

}  // namespace

void noisy_output_forward(const NoisyOutputShape& shape, NoisyRows<const float> mean, NoisyRows<const float> v,
                          NoisyRows<const float> bound, NoisyRows<const float> noise, NoisyOutputDtype dtype,
                          void* out, void* stream) {
  check_shape(shape);
  const unsigned rows = static_cast<unsigned>(shape.batch * shape.time);
  if (rows == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case NoisyOutputDtype::float32:
      forward_kernel<<<rows, kThreads, 0, s>>>(shape, mean, v, bound, noise, static_cast<float*>(out));
      break;
    case NoisyOutputDtype::bfloat16:
      forward_kernel<<<rows, kThreads, 0, s>>>(shape, mean, v, bound, noise, static_cast<__nv_bfloat16*>(out));
      break;
    case NoisyOutputDtype::float16:
      forward_kernel<<<rows, kThreads, 0, s>>>(shape, mean, v, bound, noise, static_cast<__half*>(out));
      break;
  }
  check(cudaGetLastError(), "forward launch");
}

void noisy_output_backward(const NoisyOutputShape& shape, NoisyRows<const void> g, NoisyOutputDtype dtype,
                           NoisyRows<const float> v, NoisyRows<const float> bound, NoisyRows<const float> noise,
                           float* g_mean, float* g_v, float* g_bound, void* stream) {
  check_shape(shape);
  const unsigned rows = static_cast<unsigned>(shape.batch * shape.time);
  if (rows == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case NoisyOutputDtype::float32:
      backward_kernel<<<rows, kThreads, 0, s>>>(shape, as<float>(g), v, bound, noise, g_mean, g_v, g_bound);
      break;
    case NoisyOutputDtype::bfloat16:
      backward_kernel<<<rows, kThreads, 0, s>>>(shape, as<__nv_bfloat16>(g), v, bound, noise, g_mean, g_v, g_bound);
      break;
    case NoisyOutputDtype::float16:
      backward_kernel<<<rows, kThreads, 0, s>>>(shape, as<__half>(g), v, bound, noise, g_mean, g_v, g_bound);
      break;
  }
  check(cudaGetLastError(), "backward launch");
}

}  // namespace abmll::cuda
