// The fused noisy output and its backward, and the counter-based noise (see noisy_output.h). One thread block per
// row (b, t): its threads run along the row's O entries four at a time (one draw of counter-based noise gives
// four), and in backward reduce the row's shares of the bound's gradient in shared memory. One pass over each
// [B, T, O] tensor, where the chain of ATen ops makes about six forward and twenty backward. Sequences' noise keys
// travel in the launch's parameters, up to kKeysPerLaunch sequences per launch.
#include "noisy_output.h"

#include "kernel_common.cuh"
#include "meta/counter_noise.h"
#include "meta/noisy_output_entry.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace abmll::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kKeysPerLaunch = 256;

// The sequences [first, first + count) one launch covers, and their noise keys (unused for tensor noise).
struct Sequences {
  std::int64_t first = 0, count = 0;
  std::uint64_t key[kKeysPerLaunch];
};

void check_shape(const NoisyOutputShape& shape) {
  if (shape.batch < 0 || shape.time < 0 || shape.out <= 0)
    throw std::runtime_error("[noisy_output] B and T must be non-negative and O positive");
  if (shape.batch * shape.time > 0x7fffffffLL) throw std::runtime_error("[noisy_output] more than 2^31 - 1 rows");
  if (shape.time > 0xffffffffLL || shape.out > 0x3ffffffffLL)
    throw std::runtime_error("[noisy_output] T or O beyond the noise counter's range");
}

template <class T>
__device__ inline T* row_of(NoisyRows<T> rows, int64_t b, int64_t t) {
  return rows.data + b * rows.batch_stride + t * rows.time_stride;
}

// Entries 4 q .. 4 q + 3 of the row's noise (those below O): drawn from the sequence's key, or read.
template <bool kCounter>
__device__ inline counter_noise::Normals noise_quad(const float* row, std::uint64_t key, int64_t q, int64_t t,
                                                    int64_t out) {
  if constexpr (kCounter) {
    return counter_noise::normal4(key, static_cast<std::uint32_t>(q), static_cast<std::uint32_t>(t));
  } else {
    counter_noise::Normals n{};
    for (int i = 0; i < 4; ++i)
      if (4 * q + i < out) n.z[i] = row[4 * q + i];
    return n;
  }
}

template <class Out, bool kCounter>
__global__ void noisy_forward_kernel(NoisyOutputShape shape, Sequences seq, NoisyRows<const float> mean,
                                     NoisyRows<const float> v, NoisyRows<const float> bound,
                                     NoisyRows<const float> noise, Out* out) {
  const int64_t local = blockIdx.x / shape.time, t = blockIdx.x % shape.time, b = seq.first + local;
  const float* m = row_of(mean, b, t);
  const float* vr = row_of(v, b, t);
  const float* e = kCounter ? nullptr : row_of(noise, b, t);
  const std::uint64_t key = kCounter ? seq.key[local] : 0;
  const float bo = *row_of(bound, b, t);
  Out* y = out + (b * shape.time + t) * shape.out;
  for (int64_t q = threadIdx.x; 4 * q < shape.out; q += kThreads) {
    const counter_noise::Normals n = noise_quad<kCounter>(e, key, q, t, shape.out);
    for (int i = 0; i < 4; ++i) {
      const int64_t o = 4 * q + i;
      if (o < shape.out) y[o] = from_float<Out>(noisy_output::value(m[o], vr[o], bo, n.z[i]));
    }
  }
}

template <class G, bool kCounter>
__global__ void noisy_backward_kernel(NoisyOutputShape shape, Sequences seq, NoisyRows<const G> g,
                                      NoisyRows<const float> v, NoisyRows<const float> bound,
                                      NoisyRows<const float> noise, float* g_mean, float* g_v, float* g_bound) {
  __shared__ float shares[kThreads];
  const int64_t local = blockIdx.x / shape.time, t = blockIdx.x % shape.time, b = seq.first + local;
  const int64_t row = b * shape.time + t;
  const G* gr = row_of(g, b, t);
  const float* vr = row_of(v, b, t);
  const float* e = kCounter ? nullptr : row_of(noise, b, t);
  const std::uint64_t key = kCounter ? seq.key[local] : 0;
  const float bo = *row_of(bound, b, t);
  float share = 0;
  for (int64_t q = threadIdx.x; 4 * q < shape.out; q += kThreads) {
    const counter_noise::Normals n = noise_quad<kCounter>(e, key, q, t, shape.out);
    for (int i = 0; i < 4; ++i) {
      const int64_t o = 4 * q + i;
      if (o >= shape.out) break;
      const float go = to_float(gr[o]);
      const noisy_output::EntryGradient d = noisy_output::gradient(go, vr[o], bo, n.z[i]);
      g_v[row * shape.out + o] = d.v;
      if (g_mean) g_mean[row * shape.out + o] = go;
      share += d.bound;
    }
  }
  shares[threadIdx.x] = share;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shares[threadIdx.x] += shares[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) g_bound[row] = shares[0];
}

__global__ void counter_noise_kernel(NoisyOutputShape shape, Sequences seq, float* out) {
  const int64_t local = blockIdx.x / shape.time, t = blockIdx.x % shape.time, b = seq.first + local;
  float* y = out + (b * shape.time + t) * shape.out;
  for (int64_t q = threadIdx.x; 4 * q < shape.out; q += kThreads) {
    const counter_noise::Normals n =
        counter_noise::normal4(seq.key[local], static_cast<std::uint32_t>(q), static_cast<std::uint32_t>(t));
    for (int i = 0; i < 4; ++i)
      if (4 * q + i < shape.out) y[4 * q + i] = n.z[i];
  }
}

template <class T>
NoisyRows<const T> as(NoisyRows<const void> rows) {
  return {static_cast<const T*>(rows.data), rows.batch_stride, rows.time_stride};
}

// Calls launch(sequences, blocks) once for all rows (tensor noise: keys null) or per kKeysPerLaunch sequences.
template <class Launch>
void for_each_launch(const NoisyOutputShape& shape, const std::uint64_t* keys, Launch&& launch) {
  if (shape.batch * shape.time == 0) return;
  Sequences seq{};
  if (!keys) {
    seq.count = shape.batch;
    launch(seq, static_cast<unsigned>(shape.batch * shape.time));
    return;
  }
  for (std::int64_t first = 0; first < shape.batch; first += kKeysPerLaunch) {
    seq.first = first;
    seq.count = std::min<std::int64_t>(kKeysPerLaunch, shape.batch - first);
    std::copy(keys + first, keys + first + seq.count, seq.key);
    launch(seq, static_cast<unsigned>(seq.count * shape.time));
  }
}

template <class Out>
void forward_typed(const NoisyOutputShape& shape, NoisyRows<const float> mean, NoisyRows<const float> v,
                   NoisyRows<const float> bound, const NoisyOutputNoise& noise, Out* out, cudaStream_t s) {
  for_each_launch(shape, noise.sequence_keys, [&](const Sequences& seq, unsigned blocks) {
    if (noise.sequence_keys)
      noisy_forward_kernel<Out, true><<<blocks, kThreads, 0, s>>>(shape, seq, mean, v, bound, noise.rows, out);
    else
      noisy_forward_kernel<Out, false><<<blocks, kThreads, 0, s>>>(shape, seq, mean, v, bound, noise.rows, out);
    check_launch("noisy_output", "forward launch");
  });
}

template <class G>
void backward_typed(const NoisyOutputShape& shape, NoisyRows<const void> g, NoisyRows<const float> v,
                    NoisyRows<const float> bound, const NoisyOutputNoise& noise, float* g_mean, float* g_v,
                    float* g_bound, cudaStream_t s) {
  for_each_launch(shape, noise.sequence_keys, [&](const Sequences& seq, unsigned blocks) {
    if (noise.sequence_keys)
      noisy_backward_kernel<G, true>
          <<<blocks, kThreads, 0, s>>>(shape, seq, as<G>(g), v, bound, noise.rows, g_mean, g_v, g_bound);
    else
      noisy_backward_kernel<G, false>
          <<<blocks, kThreads, 0, s>>>(shape, seq, as<G>(g), v, bound, noise.rows, g_mean, g_v, g_bound);
    check_launch("noisy_output", "backward launch");
  });
}

}  // namespace

void noisy_output_forward(const NoisyOutputShape& shape, NoisyRows<const float> mean, NoisyRows<const float> v,
                          NoisyRows<const float> bound, const NoisyOutputNoise& noise, ActivationDtype dtype,
                          void* out, void* stream) {
  check_shape(shape);
  const auto s = static_cast<cudaStream_t>(stream);
  with_activation_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward_typed(shape, mean, v, bound, noise, static_cast<T*>(out), s);
  });
}

void noisy_output_backward(const NoisyOutputShape& shape, NoisyRows<const void> g, ActivationDtype dtype,
                           NoisyRows<const float> v, NoisyRows<const float> bound, const NoisyOutputNoise& noise,
                           float* g_mean, float* g_v, float* g_bound, void* stream) {
  check_shape(shape);
  const auto s = static_cast<cudaStream_t>(stream);
  with_activation_type(dtype, [&](auto tag) {
    backward_typed<typename decltype(tag)::type>(shape, g, v, bound, noise, g_mean, g_v, g_bound, s);
  });
}

void counter_noise_fill(const NoisyOutputShape& shape, const std::uint64_t* sequence_keys, float* out, void* stream) {
  check_shape(shape);
  if (!sequence_keys) throw std::runtime_error("[noisy_output] counter_noise_fill without keys");
  const auto s = static_cast<cudaStream_t>(stream);
  for_each_launch(shape, sequence_keys, [&](const Sequences& seq, unsigned blocks) {
    counter_noise_kernel<<<blocks, kThreads, 0, s>>>(shape, seq, out);
    check_launch("noisy_output", "noise launch");
  });
}

}  // namespace abmll::cuda
