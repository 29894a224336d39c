// MXFP4 dequantization (see mxfp4.h).
#include "model/mxfp4.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/bitwise_and.h>
#include <ATen/ops/bitwise_right_shift.h>
#include <ATen/ops/exp2.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/tensor.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <vector>

#include "util/error.h"

namespace abmll::model {

at::Tensor dequantize_mxfp4(const at::Tensor& blocks, const at::Tensor& scales, at::ScalarType dtype) {
  const auto shape = blocks.sizes();
  if (blocks.scalar_type() != at::kByte || scales.scalar_type() != at::kByte || blocks.dim() < 2 ||
      shape.back() != 16 || scales.sizes() != shape.slice(0, shape.size() - 1))
    throw InputError(fmt::format("MXFP4 blocks [{}] ({}) and scales [{}] ({}) do not pair up: expected uint8 "
                                 "[..., G, 16] and [..., G]",
                                 fmt::join(shape, ", "), c10::toString(blocks.scalar_type()),
                                 fmt::join(scales.sizes(), ", "), c10::toString(scales.scalar_type())));
  // E2M1 by its 4 bits: sign, then a 2-bit exponent and a 1-bit mantissa.
  static const std::vector<float> kE2M1 = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                           -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  const at::Tensor table = at::tensor(kE2M1, at::TensorOptions().device(blocks.device()));
  const at::Tensor codes = blocks.to(at::kInt);
  // Each byte's low nibble, then its high one: [..., G, 16, 2], read as [..., G, 32] in that order.
  const at::Tensor nibbles = at::stack({codes.bitwise_and(0x0F), codes.bitwise_right_shift(4)}, -1).reshape({-1});
  std::vector<int64_t> grouped(shape.begin(), shape.end() - 1);  // [..., G]
  grouped.push_back(32);
  const at::Tensor values = table.index_select(0, nibbles).view(grouped);
  const at::Tensor factor = at::exp2(scales.to(at::kFloat) - 127.0).unsqueeze(-1);  // [..., G, 1]
  std::vector<int64_t> out_shape(shape.begin(), shape.end() - 1);
  out_shape.back() *= 32;
  return (values * factor).to(dtype).reshape(out_shape);
}

}  // namespace abmll::model
