// Whether abmll's own CUDA kernels (cuda/: SwiGLU, RoPE, the `weight` family's KL, noisy output, counter-based noise
// and squared input) run where they apply, or ATen's ops throughout: `model.cuda_kernels`, process-wide, set once at
// start-up (on by default). Off, a GPU run computes what the chains of ATen ops compute (the kernels' references), the
// `weight` family drawing its noise per group with the device's generator as on the CPU: for comparisons, and for
// telling a kernel's fault from the model's. No effect on the CPU. Also the activations' dtypes the elementwise
// kernels take, and their names on the kernels' side.
#pragma once

#include <c10/core/ScalarType.h>

#ifdef ABMLL_HAVE_CUDA
#include "activation_dtype.h"
#endif

namespace abmll {

void use_cuda_kernels(bool on);
// Whether the kernels run where they apply: model.cuda_kernels, and false in a build without cuda/.
bool cuda_kernels_enabled();

// float32, bfloat16 or float16: the dtypes of activations the elementwise kernels (and their CPU loops) take.
inline bool kernel_activation_dtype(c10::ScalarType t) {
  return t == c10::kFloat || t == c10::kBFloat16 || t == c10::kHalf;
}

#ifdef ABMLL_HAVE_CUDA
// A dtype that kernel_activation_dtype() accepts, as the kernels' entry points name it.
inline cuda::ActivationDtype activation_dtype(c10::ScalarType t) {
  return t == c10::kFloat      ? cuda::ActivationDtype::float32
         : t == c10::kBFloat16 ? cuda::ActivationDtype::bfloat16
                               : cuda::ActivationDtype::float16;
}
#endif

}  // namespace abmll
