// Whether abmll's own CUDA kernels (cuda/: SwiGLU, RoPE, the `weight` family's KL, noisy output, counter-based noise
// and squared input) run where they apply, or ATen's ops throughout: `model.cuda_kernels`, process-wide, set once at
// start-up (on by default). Off, a GPU run computes what the chains of ATen ops compute (the kernels' references), the
// `weight` family drawing its noise per group with the device's generator as on the CPU: for comparisons, and for
// telling a kernel's fault from the model's. No effect on the CPU.
#pragma once

namespace abmll {

void use_cuda_kernels(bool on);
bool cuda_kernels_enabled();

}  // namespace abmll
