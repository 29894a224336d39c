// Conversions between float32 (the kernels' arithmetic) and the activations' dtypes, in device code: rounding to
// nearest even, as ATen's casts do.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

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

}  // namespace abmll::cuda
