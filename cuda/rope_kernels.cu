// Rotary position embeddings, forward and backward (see rope_kernels.h). One thread per entry (b, h, t, i); its
// partner entry i +- Dh/2 is in the same row (a cached read). In rotate_half's layout, with h = Dh/2:
//   forward   y[i] = x[i] c[i] + sign(i) x[p] s[i]
//   backward  g_x[i] = g[i] c[i] - sign(i) g[p] s[p]
// where p = i + h and sign = -1 for i < h, p = i - h and sign = +1 otherwise. Each product is rounded to the
// activations' dtype, then their sum (ATen's chain: x * cos, roll(x) * signed sin, their sum; in backward the two
// branches' gradients, then autograd's sum of them); negation is exact.
#include "rope_kernels.h"

#include "kernel_common.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace abmll::cuda {
namespace {

constexpr int kThreads = 256;

template <class T, bool kBackward>
__global__ void rope_kernel(const T* in, const T* cos, const T* sin, T* out, RopeLayout l, int total) {
  const int e = blockIdx.x * kThreads + threadIdx.x;
  if (e >= total) return;
  const int dim = static_cast<int>(l.dim), half = dim / 2;
  const int i = e % dim;
  int row = e / dim;
  const int t = row % static_cast<int>(l.time);
  row /= static_cast<int>(l.time);
  const int h = row % static_cast<int>(l.heads);
  const int b = row / static_cast<int>(l.heads);
  const T* x = in + b * l.in_strides[0] + h * l.in_strides[1] + t * l.in_strides[2];
  const T* c = cos + b * l.table_strides[0] + t * l.table_strides[1];
  const T* s = sin + b * l.table_strides[0] + t * l.table_strides[1];
  const bool first = i < half;
  const int p = first ? i + half : i - half;
  // __fmul_rn: each product rounded on its own, never contracted with the sum into a fused multiply-add (for float32,
  // where rounded<T> is the identity, nvcc would contract it; the chain rounds the product first).
  const float direct = rounded<T>(__fmul_rn(to_float(x[i]), to_float(c[i])));
  float partner;
  if (kBackward) partner = rounded<T>(__fmul_rn(to_float(x[p]), to_float(s[p])));
  else partner = rounded<T>(__fmul_rn(to_float(x[p]), to_float(s[i])));
  // forward: sign(i) = -1 for the first half; backward: -sign(i).
  if (first != kBackward) partner = -partner;
  out[b * l.out_strides[0] + h * l.out_strides[1] + t * l.out_strides[2] + i] = from_float<T>(direct + partner);
}

template <class T>
void launch(const void* in, const void* cos, const void* sin, void* out, const RopeLayout& l, bool backward,
            cudaStream_t s) {
  const std::int64_t entries = l.batch * l.heads * l.time * l.dim;  // < 2^31 (rope_apply)
  const auto total = static_cast<int>(entries);
  const auto blocks = static_cast<unsigned>((entries + kThreads - 1) / kThreads);
  const auto* x = static_cast<const T*>(in);
  const auto* c = static_cast<const T*>(cos);
  const auto* sn = static_cast<const T*>(sin);
  auto* y = static_cast<T*>(out);
  if (backward) rope_kernel<T, true><<<blocks, kThreads, 0, s>>>(x, c, sn, y, l, total);
  else rope_kernel<T, false><<<blocks, kThreads, 0, s>>>(x, c, sn, y, l, total);
  check_launch("rope", backward ? "backward launch" : "forward launch");
}

}  // namespace

void rope_apply(const void* in, const void* cos, const void* sin, void* out, const RopeLayout& layout,
                ActivationDtype dtype, bool backward, void* stream) {
  if (layout.dim <= 0 || layout.dim % 2 != 0) throw std::runtime_error("[rope] the head dimension must be even");
  const std::int64_t total = layout.batch * layout.heads * layout.time * layout.dim;
  if (layout.batch < 0 || layout.heads < 0 || layout.time < 0 || total >= 0x7fffffffLL)
    throw std::runtime_error("[rope] sizes outside [0, 2^31)");
  if (total == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  with_activation_type(dtype, [&](auto tag) {
    launch<typename decltype(tag)::type>(in, cos, sin, out, layout, backward, s);
  });
}

}  // namespace abmll::cuda
