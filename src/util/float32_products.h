// Float32 matrix products on the GPU: TF32 tensor cores (inputs rounded to a 10-bit mantissa, float32
// accumulation; Ampere and later) or full float32. The adapters' products and the weight family's variance are
// float32 matrix products on bf16 activations (8-bit mantissa): on TF32 they run several times faster with no loss
// that the activations do not already carry, while on plain float32 cores they cost as much time as the frozen bf16
// projections they adapt. The weight family's KL, a small difference of large products, keeps full float32.
// Process-wide (LibTorch's cuBLAS setting); no effect on the CPU.
#pragma once

namespace abmll {

// Lets cuBLAS run float32 matrix products on TF32 (or not).
void allow_tf32_products(bool allow);

// While alive, float32 matrix products on the GPU are full float32; the previous setting is restored after.
class FullFloat32Products {
 public:
  FullFloat32Products();
  ~FullFloat32Products();
  FullFloat32Products(const FullFloat32Products&) = delete;
  FullFloat32Products& operator=(const FullFloat32Products&) = delete;

 private:
  bool restore_tf32_;
};

}  // namespace abmll
