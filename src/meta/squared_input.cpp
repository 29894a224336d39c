// The squared input on the CPU and its dispatch to the CUDA kernels (see squared_input.h).
#include "meta/squared_input.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "util/cuda_kernels.h"
#include "util/error.h"

#ifdef ABMLL_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "squared_input_kernels.h"
#endif

namespace abmll::meta {
namespace {

constexpr int64_t kGrain = 1 << 15;  // entries per task of the thread pool

template <class T>
void square_cpu(const at::Tensor& x, at::Tensor& out) {
  const T* src = static_cast<const T*>(x.const_data_ptr());
  float* dst = out.mutable_data_ptr<float>();
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float v = static_cast<float>(src[i]);
      dst[i] = v * v;
    }
  });
}

template <class T>
void gradient_cpu(const at::Tensor& x, const at::Tensor& h, at::Tensor& out) {
  const T* src = static_cast<const T*>(x.const_data_ptr());
  const float* hs = h.const_data_ptr<float>();
  T* dst = static_cast<T*>(out.mutable_data_ptr());
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dst[i] = static_cast<T>(2.0f * static_cast<float>(src[i]) * hs[i]);
  });
}

}  // namespace

bool squared_input_fused_applies(const at::Tensor& x, at::ScalarType result) {
  const auto t = x.scalar_type();
  if (result != at::kFloat || !kernel_activation_dtype(t) || !x.is_contiguous())
    return false;
#ifdef ABMLL_HAVE_CUDA
  if (x.is_cuda()) return cuda_kernels_enabled();
#endif
  return x.is_cpu();
}

at::Tensor squared_input(const at::Tensor& x) {
  RECORD_USER_SCOPE("abmll::squared_input");
  if (!squared_input_fused_applies(x, at::kFloat)) throw Error("squared_input: an input the fused code does not take");
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(at::kFloat));
#ifdef ABMLL_HAVE_CUDA
  if (x.is_cuda()) {
    const c10::cuda::CUDAGuard guard(x.device());
    cuda::squared_input(x.const_data_ptr(), activation_dtype(x.scalar_type()), out.mutable_data_ptr<float>(), x.numel(),
                        c10::cuda::getCurrentCUDAStream().stream());
    return out;
  }
#endif
  if (x.scalar_type() == at::kFloat) square_cpu<float>(x, out);
  else if (x.scalar_type() == at::kBFloat16) square_cpu<c10::BFloat16>(x, out);
  else square_cpu<c10::Half>(x, out);
  return out;
}

at::Tensor squared_input_gradient(const at::Tensor& x, const at::Tensor& h_in) {
  RECORD_USER_SCOPE("abmll::squared_input_gradient");
  if (!squared_input_fused_applies(x, at::kFloat) || h_in.scalar_type() != at::kFloat || h_in.sizes() != x.sizes() ||
      h_in.device() != x.device())
    throw Error("squared_input_gradient: inputs the fused code does not take");
  const at::Tensor h = h_in.contiguous();
  at::Tensor out = at::empty_like(x);
#ifdef ABMLL_HAVE_CUDA
  if (x.is_cuda()) {
    const c10::cuda::CUDAGuard guard(x.device());
    cuda::squared_input_gradient(x.const_data_ptr(), h.const_data_ptr<float>(), activation_dtype(x.scalar_type()),
                                 out.mutable_data_ptr(), x.numel(), c10::cuda::getCurrentCUDAStream().stream());
    return out;
  }
#endif
  if (x.scalar_type() == at::kFloat) gradient_cpu<float>(x, h, out);
  else if (x.scalar_type() == at::kBFloat16) gradient_cpu<c10::BFloat16>(x, h, out);
  else gradient_cpu<c10::Half>(x, h, out);
  return out;
}

}  // namespace abmll::meta
