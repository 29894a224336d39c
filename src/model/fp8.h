// Fine-grained FP8 weights (transformers' FineGrainedFP8 format, quantization_config's quant_method "fp8": the -FP8
// releases of Qwen3 and DeepSeek-V3, Ministral-3's instruct models): each linear weight [out, in] stored as
// float8_e4m3fn, beside a `weight_scale_inv` that multiplies it back, one per block of block[0] rows x block[1]
// columns ([ceil(out / block[0]), ceil(in / block[1])], the last blocks ragged), or one for the whole tensor.
// Dequantized once, when the weights are loaded, as transformers does without a GPU that computes in FP8.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

namespace abmll::model {

// weight [..., out, in] float8_e4m3fn, scale_inv [..., ceil(out / b0), ceil(in / b1)] (block {b0, b1}) or of one
// element (block {0, 0}: per tensor), float32, bfloat16 or float16 -> [..., out, in] in `dtype` on weight's device:
// each value times its block's scale in float32, rounded once to `dtype`. Throws abmll::InputError naming `name` (the
// weight's tensor) when the dtypes or the scales' grid do not fit.
at::Tensor dequantize_fp8(const at::Tensor& weight, const at::Tensor& scale_inv, std::array<int64_t, 2> block,
                          at::ScalarType dtype, const std::string& name);

}  // namespace abmll::model
