// The TF32 switch for float32 matrix products on the GPU and the scope that keeps full float32 (the weight family's
// KL), as LibTorch records them; what cuBLAS then does is for the GPU check to see.
#include <catch2/catch.hpp>

#include <ATen/Context.h>

#include "util/float32_products.h"

TEST_CASE("model.tf32's switch, and full float32 products inside the KL's scope, restored after", "[util]") {
  const bool before = at::globalContext().allowTF32CuBLAS();
  abmll::allow_tf32_products(true);
  CHECK(at::globalContext().allowTF32CuBLAS());
  {
    const abmll::FullFloat32Products full;
    CHECK_FALSE(at::globalContext().allowTF32CuBLAS());
    {
      const abmll::FullFloat32Products nested;
      CHECK_FALSE(at::globalContext().allowTF32CuBLAS());
    }
    CHECK_FALSE(at::globalContext().allowTF32CuBLAS());
  }
  CHECK(at::globalContext().allowTF32CuBLAS());
  abmll::allow_tf32_products(false);
  {
    const abmll::FullFloat32Products full;
    CHECK_FALSE(at::globalContext().allowTF32CuBLAS());
  }
  CHECK_FALSE(at::globalContext().allowTF32CuBLAS());
  abmll::allow_tf32_products(before);
}
