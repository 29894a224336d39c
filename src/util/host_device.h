// ABMLL_HOST_DEVICE marks inline arithmetic that both the CPU loops (g++) and the CUDA kernels (nvcc) compile, so
// that the CPU tests check the very code the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define ABMLL_HOST_DEVICE __host__ __device__
#else
#define ABMLL_HOST_DEVICE
#endif

// Unrolls the loop that follows in device code (where a small array indexed by its counter then stays in registers);
// nothing elsewhere.
#if defined(__CUDA_ARCH__)
#define ABMLL_UNROLL _Pragma("unroll")
#else
#define ABMLL_UNROLL
#endif
