// The fused noisy output on the CPU and its dispatch to the CUDA kernels (see noisy_output_fused.h).
#include "meta/noisy_output_fused.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

#include "meta/noisy_output_entry.h"
#include "util/error.h"

#ifdef ABMLL_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "noisy_output.h"
#endif

namespace abmll::meta {
namespace {

bool output_dtype_applies(at::ScalarType t) { return t == at::kFloat || t == at::kBFloat16 || t == at::kHalf; }

// Rows (b, t) of a [B, T, X] tensor with a contiguous last dimension.
template <class T>
struct Rows {
  const T* data;
  int64_t batch_stride, time_stride;
  const T* at(int64_t b, int64_t t) const { return data + b * batch_stride + t * time_stride; }
};

template <class T>
Rows<T> rows_of(const at::Tensor& x) {
  return {static_cast<const T*>(x.const_data_ptr()), x.stride(0), x.stride(1)};
}

// Rows of about 16 K entries per task of the thread pool.
int64_t grain(int64_t out) { return std::max<int64_t>(1, 16384 / out); }

template <class Out>
void forward_cpu(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound, const at::Tensor& noise,
                 at::Tensor& y) {
  const int64_t time = mean.size(1), out = mean.size(2);
  const Rows<float> m = rows_of<float>(mean), vr = rows_of<float>(v), br = rows_of<float>(bound),
                    e = rows_of<float>(noise);
  Out* dst = y.mutable_data_ptr<Out>();
  at::parallel_for(0, mean.size(0) * time, grain(out), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / time, t = r % time;
      const float *mo = m.at(b, t), *vo = vr.at(b, t), *eo = e.at(b, t);
      const float bo = *br.at(b, t);
      Out* yo = dst + r * out;
      for (int64_t o = 0; o < out; ++o) yo[o] = static_cast<Out>(noisy_output::value(mo[o], vo[o], bo, eo[o]));
    }
  });
}

template <class G>
void backward_cpu(const at::Tensor& g, const at::Tensor& v, const at::Tensor& bound, const at::Tensor& noise,
                  NoisyOutputGradients& d, bool copy_g) {
  const int64_t time = g.size(1), out = g.size(2);
  const Rows<G> gr = rows_of<G>(g);
  const Rows<float> vr = rows_of<float>(v), br = rows_of<float>(bound), e = rows_of<float>(noise);
  float* g_mean = copy_g ? d.mean.mutable_data_ptr<float>() : nullptr;
  float* g_v = d.v.mutable_data_ptr<float>();
  float* g_bound = d.bound.mutable_data_ptr<float>();
  at::parallel_for(0, g.size(0) * time, grain(out), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / time, t = r % time;
      const G* go = gr.at(b, t);
      const float *vo = vr.at(b, t), *eo = e.at(b, t);
      const float bo = *br.at(b, t);
      double share = 0;
      for (int64_t o = 0; o < out; ++o) {
        const float gf = static_cast<float>(go[o]);
        const noisy_output::EntryGradient entry = noisy_output::gradient(gf, vo[o], bo, eo[o]);
        g_v[r * out + o] = entry.v;
        if (g_mean) g_mean[r * out + o] = gf;
        share += entry.bound;
      }
      g_bound[r] = static_cast<float>(share);
    }
  });
}

#ifdef ABMLL_HAVE_CUDA
cuda::NoisyOutputDtype cuda_dtype(at::ScalarType t) {
  return t == at::kFloat ? cuda::NoisyOutputDtype::float32
         : t == at::kBFloat16 ? cuda::NoisyOutputDtype::bfloat16
                              : cuda::NoisyOutputDtype::float16;
}

template <class T = float>
cuda::NoisyRows<const T> cuda_rows(const at::Tensor& x) {
  return {static_cast<const T*>(x.const_data_ptr()), x.stride(0), x.stride(1)};
}

cuda::NoisyOutputShape cuda_shape(const at::Tensor& x) { return {x.size(0), x.size(1), x.size(2)}; }
#endif

}  // namespace

bool noisy_output_fused_applies(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                                const at::Tensor& noise, at::ScalarType out) {
  const at::Device device = mean.device();
#ifdef ABMLL_HAVE_CUDA
  const bool device_ok = device.is_cpu() || (device.is_cuda() && mean.size(0) * mean.size(1) <= 0x7fffffffLL);
#else
  const bool device_ok = device.is_cpu();
#endif
  if (!device_ok || !output_dtype_applies(out) || mean.dim() != 3 || mean.size(2) == 0) return false;
  for (const at::Tensor* t : {&mean, &v, &noise})
    if (t->device() != device || t->scalar_type() != at::kFloat || t->sizes() != mean.sizes() || t->stride(2) != 1)
      return false;
  return bound.device() == device && bound.scalar_type() == at::kFloat && bound.dim() == 3 &&
         bound.size(0) == mean.size(0) && bound.size(1) == mean.size(1) && bound.size(2) == 1;
}

at::Tensor noisy_output_fused_forward(const at::Tensor& mean, const at::Tensor& v, const at::Tensor& bound,
                                      const at::Tensor& noise, at::ScalarType out) {
  RECORD_USER_SCOPE("abmll::noisy_output_fused_forward");
  if (!noisy_output_fused_applies(mean, v, bound, noise, out))
    throw Error("noisy_output_fused_forward: inputs the fused code does not take");
  at::Tensor y = at::empty(mean.sizes(), mean.options().dtype(out));
#ifdef ABMLL_HAVE_CUDA
  if (mean.is_cuda()) {
    const c10::cuda::CUDAGuard guard(mean.device());
    cuda::noisy_output_forward(cuda_shape(mean), cuda_rows(mean), cuda_rows(v), cuda_rows(bound), cuda_rows(noise),
                               cuda_dtype(out), y.mutable_data_ptr(), c10::cuda::getCurrentCUDAStream().stream());
    return y;
  }
#endif
  if (out == at::kFloat) forward_cpu<float>(mean, v, bound, noise, y);
  else if (out == at::kBFloat16) forward_cpu<c10::BFloat16>(mean, v, bound, noise, y);
  else forward_cpu<c10::Half>(mean, v, bound, noise, y);
  return y;
}

NoisyOutputGradients noisy_output_fused_backward(const at::Tensor& g_in, const at::Tensor& v,
                                                 const at::Tensor& bound, const at::Tensor& noise) {
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
    cuda::noisy_output_backward(cuda_shape(v), cuda_rows<void>(g), cuda_dtype(g.scalar_type()), cuda_rows(v),
                                cuda_rows(bound), cuda_rows(noise), copy_g ? d.mean.mutable_data_ptr<float>() : nullptr,
                                d.v.mutable_data_ptr<float>(), d.bound.mutable_data_ptr<float>(),
                                c10::cuda::getCurrentCUDAStream().stream());
    return d;
  }
#endif
  if (g.scalar_type() == at::kFloat) backward_cpu<float>(g, v, bound, noise, d, copy_g);
  else if (g.scalar_type() == at::kBFloat16) backward_cpu<c10::BFloat16>(g, v, bound, noise, d, copy_g);
  else backward_cpu<c10::Half>(g, v, bound, noise, d, copy_g);
  return d;
}

}  // namespace abmll::meta
