// The squared input and its gradient (see squared_input_kernels.h): one thread per entry. As ATen's chain computes
// them: x.to(float32) is exact and so is its square for bf16 and fp16 inputs (at most 22 significant bits); 2 x is
// exact, its product with h is rounded once to float32 and then to x's dtype.
#include "squared_input_kernels.h"

#include "float_conversions.cuh"

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
    throw std::runtime_error(std::string("[squared_input] ") + what + ": " + cudaGetErrorString(status));
}

template <class T>
__global__ void square_kernel(const T* x, float* out, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  const float v = to_float(x[i]);
  out[i] = v * v;
}

template <class T>
__global__ void gradient_kernel(const T* x, const float* h, T* out, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  out[i] = from_float<T>(2.0f * to_float(x[i]) * h[i]);
}

unsigned blocks_for(std::int64_t n) {
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffffLL) throw std::runtime_error("[squared_input] too many entries for one launch");
  return static_cast<unsigned>(blocks);
}

}  // namespace

void squared_input(const void* x, SquaredInputDtype dtype, float* out, std::int64_t n, void* stream) {
  if (n <= 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(n);
  switch (dtype) {
    case SquaredInputDtype::float32:
      square_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const float*>(x), out, n);
      break;
    case SquaredInputDtype::bfloat16:
      square_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(x), out, n);
      break;
    case SquaredInputDtype::float16:
      square_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const __half*>(x), out, n);
      break;
  }
  check(cudaGetLastError(), "square launch");
}

void squared_input_gradient(const void* x, const float* h, SquaredInputDtype dtype, void* out, std::int64_t n,
                            void* stream) {
  if (n <= 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(n);
  switch (dtype) {
    case SquaredInputDtype::float32:
      gradient_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const float*>(x), h, static_cast<float*>(out), n);
      break;
    case SquaredInputDtype::bfloat16:
      gradient_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(x), h,
                                                  static_cast<__nv_bfloat16*>(out), n);
      break;
    case SquaredInputDtype::float16:
      gradient_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const __half*>(x), h, static_cast<__half*>(out), n);
      break;
  }
  check(cudaGetLastError(), "gradient launch");
}

}  // namespace abmll::cuda
