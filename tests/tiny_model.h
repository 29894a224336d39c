// Random tiny model folders of each decoder family for the C++ model tests (no Python needed).
#pragma once

#include <c10/core/ScalarType.h>

#include <filesystem>

#include "model/decoder.h"

namespace abmll::test {

// The tiny models' architectures: Llama-3.1 (llama3 RoPE, untied); Qwen2 (biases on q/k/v, tied embeddings); Qwen3
// (RMSNorm of each query and key head, head_dim 12 rather than hidden / heads = 8, tied embeddings); Gemma-2 (scaled
// embeddings, (1 + w) norms on inputs and outputs, GeGLU, soft caps of 1.5 on the scores and 2 on the logits, small
// enough to bend, query_pre_attn_scalar 6, tied embeddings); Gemma-3 (as Gemma-2 without caps, with (1 + w) query and
// key head norms, layer 0 sliding (a window of 4 tokens) with its own RoPE, layer 1 with linear RoPE scaling); OLMo-2
// (norms on the blocks' outputs only, query and key norms over all heads at once, attention biases, tied); Phi-3
// (fused qkv and gate_up projections, a sliding window of 4 tokens on every layer, tied); Granite (multipliers of
// the embeddings, of the blocks' additions, of attention scores, and logits divided by 4, tied); Qwen2-MoE (layer 0
// with 4 experts of width 16, 2 per token, and a shared expert of width 24; layer 1 a dense MLP; tied); OLMoE (norms
// over whole queries and keys, q, k and v clipped at 1, 4 experts of width 48, 2 per token renormalised; tied); GLM-4
// (q/k/v biases, a fused gate_up projection, RoPE on adjacent pairs of the first half of each head, norms on the
// attention's and the MLP's outputs; tied); Cohere (attention and MLP side by side on one LayerNorm, per-head
// LayerNorms of queries and keys, RoPE on adjacent pairs in float32, logits times 0.5; tied); GraniteMoE (Granite's
// multipliers, 4 experts of width 48 stored stacked, 2 per token weighted by the softmax of their logits; tied);
// DeepSeek-V3 (latent attention: a query bottleneck of 16, a key/value latent of 12, heads of 6 + 4 rotated query/key
// dimensions and 8 value ones, adjacent pairs rotated; layer 0 dense, layer 1 with 4 experts of width 16 in 2 groups,
// 2 per token from the best group by sigmoid scores plus their bias, renormalised, x2, and a shared expert; tied);
// gpt-oss (biases on q, k, v and o, a sink logit per head, layer 0 with a window of 4, YaRN; 4 experts of width 48
// with biases, 2 per token by the softmax of their biased logits, the clamped SwiGLU at 1; tied); Apertus (query and
// key head norms, the ungated xIELU MLP with its parameters drawn per layer, Llama-3.1's RoPE scaling; tied); EXAONE-4
// (output-only norms, per-head query and key norms, layer 0 sliding with a window of 4 and rotating, layer 1 full
// without RoPE; tied); Ministral-3 (YaRN, queries scaled by position from position 2 on, with a slope of 0.5; tied);
// Qwen3.5 (layer 0 a Gated DeltaNet of 2 key heads of 8 serving 4 value heads of 8, 3 taps near 1; layer 1 gated
// attention with (1 + w) head norms and RoPE on half of each head; tied); Granite-4.0-H (layer 0 a Mamba-2 layer of
// 4 heads of 16 in 2 groups of B and C of 4, 3 taps, chunks of 3 tokens, in_proj and out_proj with biases; layer 1
// attention without RoPE; Granite's multipliers; the shared MLP; tied).
enum class TinyModel {
  llama31, qwen2, qwen3, gemma2, gemma3, olmo2, phi3, granite, qwen2_moe, olmoe, glm4, cohere, granitemoe, deepseek_v3,
  gpt_oss, apertus, exaone4, ministral3, qwen3_5, granite4
};

// The architecture's name, for test messages.
const char* to_string(TinyModel kind);

// Writes config.json and model.safetensors (float32) of a random tiny model to `dir`: hidden 32, MLP 48, 2 layers,
// 4 heads, 2 kv heads, vocabulary 50. Norm weights and biases are random too (so a missing one shows).
void write_tiny_model(const std::filesystem::path& dir, TinyModel kind);

// write_tiny_model(dir, kind), loaded with its weights in `dtype`.
model::Decoder load_tiny_model(const std::filesystem::path& dir, TinyModel kind, at::ScalarType dtype = at::kFloat);

// A model shape without weights, for tests of adapters and objectives that only need the projections' sizes:
// head_dim = hidden / heads.
model::ModelConfig small_model_config(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads,
                                      int64_t kv_heads, int64_t vocab);

}  // namespace abmll::test
