// Fine-grained FP8 dequantization (see fp8.h).
#include "model/fp8.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/repeat_interleave.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <vector>

#include "util/error.h"

namespace abmll::model {
namespace {

int64_t blocks_over(int64_t size, int64_t block) { return (size + block - 1) / block; }

}  // namespace

at::Tensor dequantize_fp8(const at::Tensor& weight, const at::Tensor& scale_inv, std::array<int64_t, 2> block,
                          at::ScalarType dtype, const std::string& name) {
  if (weight.scalar_type() != at::kFloat8_e4m3fn || weight.dim() < 2)
    throw InputError(fmt::format("tensor '{}' is {} [{}]; an FP8 weight is float8_e4m3fn [..., out, in]", name,
                                 c10::toString(weight.scalar_type()), fmt::join(weight.sizes(), ", ")));
  const at::ScalarType s = scale_inv.scalar_type();
  if (s != at::kFloat && s != at::kBFloat16 && s != at::kHalf)
    throw InputError(fmt::format("tensor '{}_scale_inv' is {}; FP8 scales must be float32, bfloat16 or float16",
                                 name, c10::toString(s)));
  const at::Tensor values = weight.to(at::kFloat);
  const at::Tensor scales = scale_inv.to(weight.device(), at::kFloat);
  if (block[0] == 0) {  // one scale for the whole tensor
    if (scales.numel() != 1)
      throw InputError(fmt::format("tensor '{}_scale_inv' is [{}]; with no weight_block_size it must hold one scale",
                                   name, fmt::join(scales.sizes(), ", ")));
    return (values * scales.reshape({})).to(dtype);
  }
  const int64_t rows = weight.size(-2), cols = weight.size(-1);
  std::vector<int64_t> grid(weight.sizes().begin(), weight.sizes().end() - 2);
  grid.push_back(blocks_over(rows, block[0]));
  grid.push_back(blocks_over(cols, block[1]));
  if (scales.sizes() != at::IntArrayRef(grid))
    throw InputError(fmt::format("tensor '{}_scale_inv' is [{}]; blocks of {} x {} over '{}' [{}] need [{}]", name,
                                 fmt::join(scales.sizes(), ", "), block[0], block[1], name,
                                 fmt::join(weight.sizes(), ", "), fmt::join(grid, ", ")));
  if (rows % block[0] == 0 && cols % block[1] == 0) {  // whole blocks: scales broadcast over a blocked view
    std::vector<int64_t> blocked(grid.begin(), grid.end() - 2), scale_view(grid.begin(), grid.end() - 2);
    blocked.insert(blocked.end(), {grid[grid.size() - 2], block[0], grid.back(), block[1]});
    scale_view.insert(scale_view.end(), {grid[grid.size() - 2], 1, grid.back(), 1});
    return (values.reshape(blocked) * scales.view(scale_view)).to(dtype).reshape(weight.sizes());
  }
  // Ragged edges: each scale over its block's rows (the last block cut to what is left), then over its columns.
  const at::Tensor per_row = scales.repeat_interleave(block[0], -2).narrow(-2, 0, rows);
  const at::Tensor per_value = per_row.repeat_interleave(block[1], -1).narrow(-1, 0, cols);
  return (values * per_value).to(dtype);
}

}  // namespace abmll::model
