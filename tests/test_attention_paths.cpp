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
  test::write_tiny_model(dir.path(), test::TinyModel::llama31);
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

TEST_CASE("right padding runs plain causal attention, other padding the pattern; both agree at real tokens",
          "[model]") {
  test::ScratchDir dir;
  test::write_tiny_model(dir.path(), test::TinyModel::qwen2);
  const model::Decoder decoder = model::Decoder::load(dir.path());
  const at::Tensor ids = at::tensor({1, 7, 9, 3, 4, 2, 5, 8, 0, 0, 0, 6, 3, 9, 2}, at::kLong).reshape({3, 5});
  const at::Tensor right = at::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, at::kLong).reshape({3, 5});
  const at::Tensor left = at::tensor({1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, at::kLong).reshape({3, 5});
  CHECK(model::layout_from_mask(right).causal);
  CHECK(model::layout_from_mask(at::ones({2, 4}, at::kLong)).causal);
  CHECK_FALSE(model::layout_from_mask(left).causal);
  CHECK_FALSE(model::layout_from_mask(at::tensor({1, 0, 1}, at::kLong).reshape({1, 3})).causal);

  // The same right-padded batch with its pattern: the same outputs at real tokens, on both attention paths; and
  // the left-padded batch, which needs its pattern, on both paths.
  model::TokenLayout patterned = model::layout_from_mask(right);
  patterned.causal = false;
  const model::TokenLayout plain = model::layout_from_mask(right), left_layout = model::layout_from_mask(left);
  auto real = [&](const at::Tensor& out, const at::Tensor& mask) {
    return out.masked_select(mask.to(at::kBool).unsqueeze(-1).expand_as(out));
  };
  model::ForwardOptions twice;
  twice.double_backward = true;
  for (const auto& options : {model::ForwardOptions{}, twice}) {
    const double diff = (real(decoder.forward(ids, plain, nullptr, options), right) -
                         real(decoder.forward(ids, patterned, nullptr, options), right))
                            .abs()
                            .max()
                            .item<double>();
    INFO("twice differentiable " << options.double_backward << ": max abs difference " << diff);
    CHECK(diff < 1e-5);
  }
  const double diff = (real(decoder.forward(ids, left_layout), left) -
                       real(decoder.forward(ids, left_layout, nullptr, twice), left))
                          .abs()
                          .max()
                          .item<double>();
  INFO("left padding, fused vs math: max abs difference " << diff);
  CHECK(diff < 1e-5);
}
