// MXFP4 (the OCP microscaling format gpt-oss's released checkpoints store their experts in): blocks of 32 values,
// each a 4-bit float (E2M1: 0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6), two per byte (the low nibble first), and one 8-bit
// power-of-two scale per block (E8M0: 2^(s - 127)). Dequantized once, when the weights are loaded, as transformers'
// Mxfp4Config(dequantize=True) does.
#pragma once

#include <ATen/core/Tensor.h>

namespace abmll::model {

// blocks [..., G, 16] uint8, scales [..., G] uint8 -> [..., G * 32] in `dtype` on blocks' device: each value the
// E2M1 of its nibble times 2^(scale - 127), exact (computed in float32, then rounded to `dtype`, which a power-of-two
// multiple of an E2M1 value never needs unless it leaves dtype's range). Throws abmll::InputError when the shapes do
// not pair up.
at::Tensor dequantize_mxfp4(const at::Tensor& blocks, const at::Tensor& scales, at::ScalarType dtype);

}  // namespace abmll::model
