// What abmll's elementwise kernels share: conversions between float32 (their arithmetic) and the activations' dtypes
// in device code, rounding to nearest even as ATen's casts do; the dispatch from ActivationDtype to the C++ type; and
// the check after a launch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "activation_dtype.h"

namespace abmll::cuda {

__device__ inline float to_float(float x) { return x; }
__device__ inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ inline float to_float(__half x) { return __half2float(x); }

template <class T>
__device__ inline T from_float(float x);
template <>
__device__ inline float from_float<float>(float x) { return x; }
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <>
__device__ inline __half from_float<__half>(float x) { return __float2half_rn(x); }

// x rounded to T and back: where a chain of ATen ops stores an intermediate in the activations' dtype.
template <class T>
__device__ inline float rounded(float x) { return to_float(from_float<T>(x)); }

template <class T>
struct TypeTag {
  using type = T;
};

// f(TypeTag<T>{}) with T the C++ type of `dtype` (float, __nv_bfloat16, __half).
template <class F>
void with_activation_type(ActivationDtype dtype, F&& f) {
  switch (dtype) {
    case ActivationDtype::float32: f(TypeTag<float>{}); break;
    case ActivationDtype::bfloat16: f(TypeTag<__nv_bfloat16>{}); break;
    case ActivationDtype::float16: f(TypeTag<__half>{}); break;
  }
}

// Throws std::runtime_error "[component] what: CUDA's message" if the last launch failed.
inline void check_launch(const char* component, const char* what) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("[") + component + "] " + what + ": " + cudaGetErrorString(status));
}

}  // namespace abmll::cuda
