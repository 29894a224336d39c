// MXFP4 dequantization (model/mxfp4.h) against values worked out by hand from the format's definition.
#include <catch2/catch.hpp>

#include <ATen/ops/full.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>

#include <vector>

#include "model/mxfp4.h"
#include "util/error.h"

using abmll::model::dequantize_mxfp4;

TEST_CASE("model mxfp4: nibbles low first, E2M1 values, power-of-two scales", "[model]") {
  // One row of one block: byte 0 = 0x21 (low nibble 1 = 0.5, high nibble 2 = 1.0), byte 1 = 0xF7 (7 = 6.0,
  // 15 = -6.0), byte 2 = 0x98 (8 = -0.0, 9 = -0.5), the rest 0x00; scale 128 = 2^1. A second block of 0x3C
  // (12 = -2.0, 3 = 1.5) with scale 125 = 2^-2.
  std::vector<uint8_t> bytes(32, 0);
  bytes[0] = 0x21;
  bytes[1] = 0xF7;
  bytes[2] = 0x98;
  for (int i = 16; i < 32; ++i) bytes[static_cast<size_t>(i)] = 0x3C;
  const at::Tensor blocks = at::tensor(bytes).view({1, 2, 16});  // [rows, G, 16]
  const at::Tensor scales = at::tensor(std::vector<uint8_t>{128, 125}).view({1, 2});
  const at::Tensor out = dequantize_mxfp4(blocks, scales, at::kFloat);
  REQUIRE(out.sizes() == at::IntArrayRef({1, 64}));
  const auto v = [&](int i) { return out[0][i].item<float>(); };
  CHECK((v(0) == 1.0f && v(1) == 2.0f && v(2) == 12.0f && v(3) == -12.0f && v(4) == -0.0f && v(5) == -1.0f));
  for (int i = 6; i < 32; ++i) CHECK(v(i) == 0.0f);
  for (int i = 32; i < 64; i += 2) CHECK((v(i) == -0.5f && v(i + 1) == 0.375f));
  // bfloat16 holds them exactly.
  CHECK(dequantize_mxfp4(blocks, scales, at::kBFloat16).to(at::kFloat).equal(out));
}

TEST_CASE("model mxfp4: blocks and scales that do not pair up are an input error", "[model]") {
  const at::Tensor blocks = at::zeros({3, 2, 16}, at::kByte);
  CHECK_THROWS_AS(dequantize_mxfp4(blocks, at::zeros({3, 3}, at::kByte), at::kFloat), abmll::InputError);
  CHECK_THROWS_AS(dequantize_mxfp4(blocks, at::zeros({3, 2}, at::kFloat), at::kFloat), abmll::InputError);
  CHECK_THROWS_AS(dequantize_mxfp4(at::zeros({3, 2, 8}, at::kByte), at::zeros({3, 2}, at::kByte), at::kFloat),
                  abmll::InputError);
  CHECK(dequantize_mxfp4(blocks, at::full({3, 2}, 127, at::kByte), at::kFloat).sizes() == at::IntArrayRef({3, 64}));
}
