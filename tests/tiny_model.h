// Random tiny Llama / Qwen2 model folders for the C++ model tests (no Python needed).
#pragma once

#include <c10/core/ScalarType.h>

#include <filesystem>

#include "model/decoder.h"

namespace abmll::test {

// Writes config.json and model.safetensors (float32) of a random tiny model to `dir`: hidden 32, MLP 48, 2 layers,
// 4 heads, 2 kv heads, vocabulary 50. qwen2: biases on q/k/v, tied embeddings; otherwise Llama-3.1 (llama3 RoPE),
// untied. Norm weights and biases are random too (so a missing one shows).
void write_tiny_model(const std::filesystem::path& dir, bool qwen2);

// write_tiny_model(dir, qwen2), loaded with its weights in `dtype`.
model::Decoder load_tiny_model(const std::filesystem::path& dir, bool qwen2, at::ScalarType dtype = at::kFloat);

// A model shape without weights, for tests of adapters and objectives that only need the projections' sizes:
// head_dim = hidden / heads.
model::ModelConfig small_model_config(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads,
                                      int64_t kv_heads, int64_t vocab);

}  // namespace abmll::test
