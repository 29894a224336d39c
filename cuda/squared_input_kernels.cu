// The squared input and its gradient (see squared_input_kernels.h): one thread per entry. As ATen's chain computes
// them: x.to(float32) is exact and so is its square for bf16 and fp16 inputs (at most 22 significant bits); 2 x is
// exact, its product with h is rounded once to float32 and then to x's dtype.
#include "squared_input_kernels.h"

#include "kernel_common.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace abmll::cuda {
namespace {

constexpr int kThreads = 256;

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

void squared_input(const void* x, ActivationDtype dtype, float* out, std::int64_t n, void* stream) {
  if (n <= 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(n);
  with_activation_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    square_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const T*>(x), out, n);
  });
  check_launch("squared_input", "square launch");
}

void squared_input_gradient(const void* x, const float* h, ActivationDtype dtype, void* out, std::int64_t n,
                            void* stream) {
  if (n <= 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(n);
  with_activation_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    gradient_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const T*>(x), h, static_cast<T*>(out), n);
  });
  check_launch("squared_input", "gradient launch");
}

}  // namespace abmll::cuda
