// The fused noisy output on the CPU and its dispatch to the CUDA kernels (see noisy_output_fused.h).
#include "meta/noisy_output_fused.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

#include "meta/counter_noise.h"
#include "meta/noisy_output_entry.h"
#include "util/cuda_kernels.h"
#include "util/error.h"

#ifdef ABMLL_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "noisy_output.h"
#endif

namespace abmll::meta {
namespace {

bool device_applies(const at::Device& device) {
#ifdef ABMLL_HAVE_CUDA
  return device.is_cpu() || (device.is_cuda() && cuda_kernels_enabled());
#else
  return device.is_cpu();
#endif
}

// Rows (b, t) of a [B, T, X] tensor with a contiguous last dimension.
template <class T>
struct Rows {
  const T* data;
  int64_t batch_stride, time_stride;
  const T* at(int64_t b, int64_t t) const { return data + b * batch_stride + t * time_stride; }
};

template <class T>
Rows<T> rows_of(const at::Tensor& x) {
  if (!x.defined()) return {nullptr, 0, 0};
  return {static_cast<const T*>(x.const_data_ptr()), x.stride(0), x.stride(1)};
}

// Rows of about 16 K entries per task of the thread pool.
int64_t grain(int64_t out) { return std::max<int64_t>(1, 16384 / out); }

// Calls f(o, noise) for each entry o of row (b, t): the noise read from the tensor's row, or drawn four at a time
// from the sequence's key.
template <bool kCounter, class F>
void for_each_entry(const Rows<float>& noise, const std::vector<std::uint64_t>& keys, int64_t b, int64_t t,
                    int64_t out, F&& f) {
  if constexpr (kCounter) {
    const std::uint64_t key = keys[static_cast<std::size_t>(b)];
    for (int64_t q = 0; 4 * q < out; ++q) {
      const counter_noise::Normals n =
          counter_noise::normal4(key, static_cast<std::uint32_t>(q), static_cast<std::uint32_t>(t));
      for (int64_t i = 0; i < 4 && 4 * q + i < out; ++i) f(4 * q + i, n.z[i]);
    }
  } else {
    const float* e = noise.at(b, t);
    for (int64_t o = 0; o < out; ++o) f(o, e[o]);
  }
}

template <class Out, bool kCounter>
void forward_cpu(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound, const OutputNoise& noise,
                 at::Tensor& y) {
  const int64_t time = mean.size(1), out = mean.size(2);
  const Rows<float> m = rows_of<float>(mean), vr = rows_of<float>(v), br = rows_of<float>(bound),
                    e = rows_of<float>(noise.tensor);
  Out* dst = y.mutable_data_ptr<Out>();
  at::parallel_for(0, mean.size(0) * time, grain(out), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / time, t = r % time;
      const float *mo = m.at(b, t), *vo = vr.at(b, t);
      const float bo = *br.at(b, t);
      Out* yo = dst + r * out;
      for_each_entry<kCounter>(e, noise.sequence_keys, b, t, out, [&](int64_t o, float z) {
        yo[o] = static_cast<Out>(noisy_output::value(mo[o], vo[o], bo, z));
      });
    }
  });
}

template <class G, bool kCounter>
void backward_cpu(const at::Tensor& g, const at::Tensor& v, const at::Tensor& bound, const OutputNoise& noise,
                  NoisyOutputGradients& d, bool copy_g) {
  const int64_t time = g.size(1), out = g.size(2);
  const Rows<G> gr = rows_of<G>(g);
  const Rows<float> vr = rows_of<float>(v), br = rows_of<float>(bound), e = rows_of<float>(noise.tensor);
  float* g_mean = copy_g ? d.mean.mutable_data_ptr<float>() : nullptr;
  float* g_v = d.v.mutable_data_ptr<float>();
  float* g_bound = d.bound.mutable_data_ptr<float>();
  at::parallel_for(0, g.size(0) * time, grain(out), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / time, t = r % time;
      const G* go = gr.at(b, t);
      const float* vo = vr.at(b, t);
      const float bo = *br.at(b, t);
      double share = 0;
      for_each_entry<kCounter>(e, noise.sequence_keys, b, t, out, [&](int64_t o, float z) {
        const float gf = static_cast<float>(go[o]);
        const noisy_output::EntryGradient entry = noisy_output::gradient(gf, vo[o], bo, z);
        g_v[r * out + o] = entry.v;
        if (g_mean) g_mean[r * out + o] = gf;
        share += entry.bound;
      });
      g_bound[r] = static_cast<float>(share);
    }
  });
}

template <class Out>
void forward_cpu_typed(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                       const OutputNoise& noise, at::Tensor& y) {
  if (noise.sequence_keys.empty()) forward_cpu<Out, false>(mean, v, bound, noise, y);
  else forward_cpu<Out, true>(mean, v, bound, noise, y);
}

template <class G>
void backward_cpu_typed(const at::Tensor& g, const at::Tensor& v, const at::Tensor& bound, const OutputNoise& noise,
                        NoisyOutputGradients& d, bool copy_g) {
  if (noise.sequence_keys.empty()) backward_cpu<G, false>(g, v, bound, noise, d, copy_g);
  else backward_cpu<G, true>(g, v, bound, noise, d, copy_g);
}

#ifdef ABMLL_HAVE_CUDA
template <class T = float>
cuda::NoisyRows<const T> cuda_rows(const at::Tensor& x) {
  if (!x.defined()) return {};
  return {static_cast<const T*>(x.const_data_ptr()), x.stride(0), x.stride(1)};
}

cuda::NoisyOutputNoise cuda_noise(const OutputNoise& noise) {
  return {cuda_rows(noise.tensor), noise.sequence_keys.empty() ? nullptr : noise.sequence_keys.data()};
}

cuda::NoisyOutputShape cuda_shape(const at::Tensor& x) { return {x.size(0), x.size(1), x.size(2)}; }
#endif

}  // namespace

at::Tensor counter_noise_tensor(const std::vector<std::uint64_t>& sequence_keys, std::int64_t time, std::int64_t out,
                                const at::Device& device) {
  RECORD_USER_SCOPE("abmll::counter_noise");
  const auto batch = static_cast<int64_t>(sequence_keys.size());
  // A GPU without the kernel (not built in, or model.cuda_kernels off): the same numbers drawn on the CPU.
  if (device.is_cuda() && !device_applies(device) && time >= 0 && out >= 0)
    return counter_noise_tensor(sequence_keys, time, out, at::kCPU).to(device);
  if (!device_applies(device) || time < 0 || out < 0)
    throw Error("counter_noise_tensor: a CPU or CUDA device and non-negative sizes are needed");
  at::Tensor noise = at::empty({batch, time, out}, at::TensorOptions().dtype(at::kFloat).device(device));
  if (noise.numel() == 0) return noise;
#ifdef ABMLL_HAVE_CUDA
  if (device.is_cuda()) {
    const c10::cuda::CUDAGuard guard(device);
    cuda::counter_noise_fill(cuda_shape(noise), sequence_keys.data(), noise.mutable_data_ptr<float>(),
                             c10::cuda::getCurrentCUDAStream().stream());
    return noise;
  }
#endif
  float* dst = noise.mutable_data_ptr<float>();
  at::parallel_for(0, batch * time, grain(out), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for_each_entry<true>({nullptr, 0, 0}, sequence_keys, r / time, r % time, out,
                           [&](int64_t o, float z) { dst[r * out + o] = z; });
  });
  return noise;
}

bool noisy_output_fused_applies(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                                const OutputNoise& noise, at::ScalarType out) {
  const at::Device device = mean.device();
  if (!device_applies(device) || !kernel_activation_dtype(out) || mean.dim() != 3 || mean.size(2) == 0) return false;
  if (device.is_cuda() && mean.size(0) * mean.size(1) > 0x7fffffffLL) return false;
  for (const at::Tensor* t : {&mean, &v})
    if (t->device() != device || t->scalar_type() != at::kFloat || t->sizes() != mean.sizes() || t->stride(2) != 1)
      return false;
  if (noise.sequence_keys.empty()) {
    const at::Tensor& e = noise.tensor;
    if (!e.defined() || e.device() != device || e.scalar_type() != at::kFloat || e.sizes() != mean.sizes() ||
        e.stride(2) != 1)
      return false;
  } else if (static_cast<int64_t>(noise.sequence_keys.size()) != mean.size(0)) {
    return false;
  }
  return bound.device() == device && bound.scalar_type() == at::kFloat && bound.dim() == 3 &&
         bound.size(0) == mean.size(0) && bound.size(1) == mean.size(1) && bound.size(2) == 1;
}

at::Tensor noisy_output_fused_forward(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                                      const OutputNoise& noise, at::ScalarType out) {
  RECORD_USER_SCOPE("abmll::noisy_output_fused_forward");
  if (!noisy_output_fused_applies(mean, v, bound, noise, out))
    throw Error("noisy_output_fused_forward: inputs the fused code does not take");
  at::Tensor y = at::empty(mean.sizes(), mean.options().dtype(out));
#ifdef ABMLL_HAVE_CUDA
  if (mean.is_cuda()) {
    const c10::cuda::CUDAGuard guard(mean.device());
    cuda::noisy_output_forward(cuda_shape(mean), cuda_rows(mean), cuda_rows(v), cuda_rows(bound), cuda_noise(noise),
                               activation_dtype(out), y.mutable_data_ptr(), c10::cuda::getCurrentCUDAStream().stream());
    return y;
  }
#endif
  if (out == at::kFloat) forward_cpu_typed<float>(mean, v, bound, noise, y);
  else if (out == at::kBFloat16) forward_cpu_typed<c10::BFloat16>(mean, v, bound, noise, y);
  else forward_cpu_typed<c10::Half>(mean, v, bound, noise, y);
  return y;
}

NoisyOutputGradients noisy_output_fused_backward(const at::Tensor& g_in, const at::Tensor& v,
                                                 const at::Tensor& bound, const OutputNoise& noise) {
  RECORD_USER_SCOPE("abmll::noisy_output_fused_backward");
  if (!noisy_output_fused_applies(v, v, bound, noise, g_in.scalar_type()) || g_in.sizes() != v.sizes() ||
      g_in.device() != v.device())
    throw Error("noisy_output_fused_backward: inputs the fused code does not take");
  const at::Tensor g = g_in.stride(2) == 1 ? g_in : g_in.contiguous();
  const bool copy_g = g.scalar_type() != at::kFloat;
  const at::TensorOptions f32 = v.options().dtype(at::kFloat);
  NoisyOutputGradients d;
  d.mean = copy_g ? at::empty(g.sizes(), f32) : g;
  d.v = at::empty(v.sizes(), f32);
  d.bound = at::empty({v.size(0), v.size(1), 1}, f32);
#ifdef ABMLL_HAVE_CUDA
  if (v.is_cuda()) {
    const c10::cuda::CUDAGuard guard(v.device());
    float* g_mean = copy_g ? d.mean.mutable_data_ptr<float>() : nullptr;
    cuda::noisy_output_backward(cuda_shape(v), cuda_rows<void>(g), activation_dtype(g.scalar_type()), cuda_rows(v),
                                cuda_rows(bound), cuda_noise(noise), g_mean, d.v.mutable_data_ptr<float>(),
                                d.bound.mutable_data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream());
    return d;
  }
#endif
  if (g.scalar_type() == at::kFloat) backward_cpu_typed<float>(g, v, bound, noise, d, copy_g);
  else if (g.scalar_type() == at::kBFloat16) backward_cpu_typed<c10::BFloat16>(g, v, bound, noise, d, copy_g);
  else backward_cpu_typed<c10::Half>(g, v, bound, noise, d, copy_g);
  return d;
}

}  // namespace abmll::meta
