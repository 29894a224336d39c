// TF32 or full float32 matrix products on the GPU (see float32_products.h).
#include "util/float32_products.h"

#include <ATen/Context.h>

namespace abmll {

// The legacy switch (allow_tf32) rather than the newer per-backend precision: it keeps both of LibTorch's records
// of the setting in agreement, which LibTorch checks when cuBLAS reads it.
void allow_tf32_products(bool allow) {
  if (at::globalContext().allowTF32CuBLAS() != allow) at::globalContext().setAllowTF32CuBLAS(allow);
}

FullFloat32Products::FullFloat32Products() : restore_tf32_(at::globalContext().allowTF32CuBLAS()) {
  if (restore_tf32_) at::globalContext().setAllowTF32CuBLAS(false);
}

FullFloat32Products::~FullFloat32Products() {
  if (restore_tf32_) at::globalContext().setAllowTF32CuBLAS(true);
}

}  // namespace abmll
