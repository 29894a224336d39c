// The decoder's two attention paths (fused SDPA, and the math kernel used when the graph is differentiated twice)
// compute the same function, padding and causality included.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>

#include "model/decoder.h"
#include "test_support.h"
#include "tiny_model.h"

using namespace abmll;

TEST_CASE("the twice-differentiable attention path equals the fused one on a padded batch", "[model]") {
  test::ScratchDir dir;
  test::write_tiny_model(dir.path(), /*qwen2=*/false);
  const model::Decoder decoder = model::Decoder::load(dir.path());
  const at::Tensor ids = at::tensor({1, 7, 9, 3, 4, 2, 5, 8, 0, 0}, at::kLong).reshape({2, 5});
  const at::Tensor mask = at::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, at::kLong).reshape({2, 5});
  model::ForwardOptions twice;
  twice.double_backward = true;
  const at::Tensor fused = decoder.forward(ids, mask);
  const at::Tensor math = decoder.forward(ids, mask, nullptr, twice);
  // Compare the real tokens only (rows at padding positions are meaningless).
  const at::Tensor keep = mask.to(at::kBool).unsqueeze(-1).expand_as(fused);
  const double diff = (fused - math).abs().masked_select(keep).max().item<double>();
  INFO("max abs difference " << diff);
  CHECK(diff < 1e-5);
}
