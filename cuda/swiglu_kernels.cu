// SwiGLU's gating, forward and backward (see swiglu_kernels.h). Each thread takes 16 bytes of every tensor (8 bf16 or 4
// float32 entries) with vector loads and stores where all pointers are 16-byte aligned, entry by entry otherwise.
// The arithmetic is ATen's: silu(x) = x / (1 + exp(-x)) and silu'(x) = s (1 + x (1 - s)), s = 1 / (1 + exp(-x)), in
// float32, rounded to the activations' dtype where its chain of ops rounds.
#include "swiglu_kernels.h"

#include "kernel_common.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace abmll::cuda {
namespace {

constexpr int kThreads = 256;

__device__ inline float silu(float x) { return x / (1.0f + expf(-x)); }

template <class T>
struct alignas(16) Pack {
  static constexpr int kEntries = 16 / sizeof(T);
  T v[kEntries];
};

template <class T, bool kVector>
__device__ inline Pack<T> load_pack(const T* p, std::int64_t i0, std::int64_t n) {
  Pack<T> pack;
  if (kVector) {
    *reinterpret_cast<uint4*>(pack.v) = *reinterpret_cast<const uint4*>(p + i0);
  } else {
    for (int k = 0; k < Pack<T>::kEntries; ++k) pack.v[k] = i0 + k < n ? p[i0 + k] : from_float<T>(0.0f);
  }
  return pack;
}

template <class T, bool kVector>
__device__ inline void store_pack(T* p, const Pack<T>& pack, std::int64_t i0, std::int64_t n) {
  if (kVector) {
    *reinterpret_cast<uint4*>(p + i0) = *reinterpret_cast<const uint4*>(pack.v);
  } else {
    for (int k = 0; k < Pack<T>::kEntries; ++k)
      if (i0 + k < n) p[i0 + k] = pack.v[k];
  }
}

// kVector: every pointer 16-byte aligned; then only the last pack may be partial, and it takes the scalar path.
template <class T, bool kVector>
__global__ void swiglu_forward_kernel(const T* gate, const T* up, T* out, std::int64_t n) {
  constexpr int kE = Pack<T>::kEntries;
  const std::int64_t i0 = (static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x) * kE;
  if (i0 >= n) return;
  const bool whole = kVector && i0 + kE <= n;
  const Pack<T> g = whole ? load_pack<T, true>(gate, i0, n) : load_pack<T, false>(gate, i0, n);
  const Pack<T> u = whole ? load_pack<T, true>(up, i0, n) : load_pack<T, false>(up, i0, n);
  Pack<T> y;
  for (int k = 0; k < kE; ++k) y.v[k] = from_float<T>(rounded<T>(silu(to_float(g.v[k]))) * to_float(u.v[k]));
  if (whole) store_pack<T, true>(out, y, i0, n);
  else store_pack<T, false>(out, y, i0, n);
}

template <class T, bool kVector>
__global__ void swiglu_backward_kernel(const T* grad, const T* gate, const T* up, T* g_gate, T* g_up,
                                       std::int64_t n) {
  constexpr int kE = Pack<T>::kEntries;
  const std::int64_t i0 = (static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x) * kE;
  if (i0 >= n) return;
  const bool whole = kVector && i0 + kE <= n;
  const Pack<T> dy = whole ? load_pack<T, true>(grad, i0, n) : load_pack<T, false>(grad, i0, n);
  const Pack<T> x = whole ? load_pack<T, true>(gate, i0, n) : load_pack<T, false>(gate, i0, n);
  Pack<T> dg, du;
  if (g_gate) {
    const Pack<T> u = whole ? load_pack<T, true>(up, i0, n) : load_pack<T, false>(up, i0, n);
    for (int k = 0; k < kE; ++k) {
      const float xf = to_float(x.v[k]);
      const float s = 1.0f / (1.0f + expf(-xf));
      const float t = rounded<T>(to_float(dy.v[k]) * to_float(u.v[k]));  // g * up, as the chain stores it
      dg.v[k] = from_float<T>(t * s * (1.0f + xf * (1.0f - s)));
    }
    if (whole) store_pack<T, true>(g_gate, dg, i0, n);
    else store_pack<T, false>(g_gate, dg, i0, n);
  }
  if (g_up) {
    for (int k = 0; k < kE; ++k) du.v[k] = from_float<T>(rounded<T>(silu(to_float(x.v[k]))) * to_float(dy.v[k]));
    if (whole) store_pack<T, true>(g_up, du, i0, n);
    else store_pack<T, false>(g_up, du, i0, n);
  }
}

bool aligned(const void* p) { return p == nullptr || reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

unsigned blocks_for(std::int64_t n, int entries) {
  const std::int64_t threads = (n + entries - 1) / entries;
  const std::int64_t blocks = (threads + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffffLL) throw std::runtime_error("[swiglu] too many entries for one launch");
  return static_cast<unsigned>(blocks);
}

template <class T>
void forward_typed(const void* gate, const void* up, void* out, std::int64_t n, cudaStream_t s) {
  const auto* g = static_cast<const T*>(gate);
  const auto* u = static_cast<const T*>(up);
  auto* y = static_cast<T*>(out);
  const unsigned blocks = blocks_for(n, Pack<T>::kEntries);
  if (aligned(g) && aligned(u) && aligned(y))
    swiglu_forward_kernel<T, true><<<blocks, kThreads, 0, s>>>(g, u, y, n);
  else
    swiglu_forward_kernel<T, false><<<blocks, kThreads, 0, s>>>(g, u, y, n);
  check_launch("swiglu", "forward launch");
}

template <class T>
void backward_typed(const void* grad, const void* gate, const void* up, void* g_gate, void* g_up, std::int64_t n,
                    cudaStream_t s) {
  const auto* dy = static_cast<const T*>(grad);
  const auto* x = static_cast<const T*>(gate);
  const auto* u = static_cast<const T*>(up);
  auto* dg = static_cast<T*>(g_gate);
  auto* du = static_cast<T*>(g_up);
  const unsigned blocks = blocks_for(n, Pack<T>::kEntries);
  if (aligned(dy) && aligned(x) && aligned(u) && aligned(dg) && aligned(du))
    swiglu_backward_kernel<T, true><<<blocks, kThreads, 0, s>>>(dy, x, u, dg, du, n);
  else
    swiglu_backward_kernel<T, false><<<blocks, kThreads, 0, s>>>(dy, x, u, dg, du, n);
  check_launch("swiglu", "backward launch");
}

}  // namespace

void swiglu_forward(const void* gate, const void* up, void* out, std::int64_t n, ActivationDtype dtype, void* stream) {
  if (n <= 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  with_activation_type(dtype, [&](auto tag) { forward_typed<typename decltype(tag)::type>(gate, up, out, n, s); });
}

void swiglu_backward(const void* g, const void* gate, const void* up, void* g_gate, void* g_up, std::int64_t n,
                     ActivationDtype dtype, void* stream) {
  if (n <= 0 || (!g_gate && !g_up)) return;
  const auto s = static_cast<cudaStream_t>(stream);
  with_activation_type(dtype, [&](auto tag) {
    backward_typed<typename decltype(tag)::type>(g, gate, up, g_gate, g_up, n, s);
  });
}

}  // namespace abmll::cuda
