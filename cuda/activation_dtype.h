// The activations' dtypes abmll's elementwise kernels take, as the host entry points name them (code built without
// nvcc maps ATen's dtypes onto these: util/cuda_kernels.h).
#pragma once

namespace abmll::cuda {

enum class ActivationDtype { float32, bfloat16, float16 };

}  // namespace abmll::cuda
