// The decoder's invariants on a random tiny model written here (no Python): padding (left or right) does not change
// a sequence's logits, frozen weights are views of the checkpoint, dtype overrides, logits_at picks rows, the
// adapter seam is reached at every projection, and (with a GPU) every architecture computes there what it computes
// on the CPU. Parity with transformers is tests/python/test_model_parity.py.
#include <catch2/catch.hpp>

#include <ATen/TensorOperators.h>
#include <ATen/Context.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "io/tensor_store.h"
#include "model/decoder.h"
#include "model/rope.h"
#include "model/weight_names.h"
#include "test_support.h"
#include "tiny_model.h"
#include "util/error.h"
#include "util/float32_products.h"

using namespace abmll::model;
using abmll::test::ScratchDir;
using abmll::test::TinyModel;
using abmll::test::write_tiny_model;

namespace {

// Records the sites it is called at; adds nothing.
class RecordingAdapter : public LinearAdapter {
 public:
  at::Tensor delta(const at::Tensor& x, const LinearSite& site) const override {
    sites.insert(projection_path(site.layer, site.projection));
    return {};
  }
  mutable std::set<std::string> sites;
};

// Adds x update^T at layer 0's q_proj.
struct QUpdate : public LinearAdapter {
  explicit QUpdate(at::Tensor w, Projection p = Projection::q) : weight(std::move(w)), projection(p) {}
  at::Tensor delta(const at::Tensor& x, const LinearSite& site) const override {
    return site.layer == 0 && site.projection == projection ? at::matmul(x, weight.t()) : at::Tensor();
  }
  at::Tensor weight;
  Projection projection;  // q (Phi-3: qkv)
};

at::Tensor ids_tensor(const std::vector<int64_t>& ids) { return at::tensor(ids, at::kLong).view({1, -1}); }

}  // namespace

TEST_CASE("model decoder: padding on either side leaves each sequence's logits unchanged", "[model]") {
  // (Qwen3.5: its DeltaNet layer's state must not see the left padding.)
  for (auto kind : {TinyModel::llama31, TinyModel::qwen2, TinyModel::qwen3, TinyModel::qwen3_5}) {
    INFO(abmll::test::to_string(kind));
    ScratchDir dir;
    write_tiny_model(dir.path(), kind);
    const Decoder decoder = Decoder::load(dir.path());
    const std::vector<int64_t> a = {3, 17, 42, 8, 1, 49, 23}, b = {5, 9, 11};
    const at::Tensor alone_a = decoder.logits(decoder.forward(ids_tensor(a), at::Tensor()))[0];  // [7, V]
    const at::Tensor alone_b = decoder.logits(decoder.forward(ids_tensor(b), at::Tensor()))[0];  // [3, V]

    for (bool left : {false, true}) {
      INFO((left ? "left padding" : "right padding"));
      const at::Tensor pad = at::zeros({4}, at::kLong);
      at::Tensor row_b = left ? at::cat({pad, ids_tensor(b)[0]}) : at::cat({ids_tensor(b)[0], pad});
      at::Tensor ids = at::stack({ids_tensor(a)[0], row_b});
      at::Tensor mask = at::ones({2, 7}, at::kLong);
      if (left) mask[1].narrow(0, 0, 4).fill_(0);
      else mask[1].narrow(0, 3, 4).fill_(0);
      const at::Tensor logits = decoder.logits(decoder.forward(ids, mask));  // [2, 7, V]
      const at::Tensor got_b = logits[1].narrow(0, left ? 4 : 0, 3);
      // (float32 rounding relative to the logits' scale: the sums run in other orders at other shapes.)
      const float scale = std::max(1.0f, alone_a.abs().max().item<float>());
      INFO("logits up to " << scale);
      CHECK((logits[0] - alone_a).abs().max().item<float>() < 1e-5f * scale);
      CHECK((got_b - alone_b).abs().max().item<float>() < 1e-5f * scale);
      CHECK_FALSE(logits.isnan().any().item<bool>());  // padding rows are meaningless but finite
    }
  }
}

TEST_CASE("model decoder: frozen weights are views of the checkpoint, and dtype overrides convert", "[model]") {
  ScratchDir dir;
  write_tiny_model(dir.path(), TinyModel::qwen2);
  const ModelConfig c = load_model_config(dir.path());
  const auto store = abmll::io::TensorStore::open(dir.path());
  const DecoderWeights w = load_decoder_weights(store, c, {});
  CHECK(w.layers[1].mlp.up.weight.data_ptr() == store.tensor("model.layers.1.mlp.up_proj.weight").data_ptr());
  CHECK_FALSE(w.layers[1].mlp.up.weight.requires_grad());
  CHECK(w.lm_head.data_ptr() == w.embed_tokens.data_ptr());  // tied
  CHECK(w.layers[0].attention.v.bias.defined());
  CHECK_FALSE(w.layers[0].attention.o.bias.defined());

  WeightOptions bf16;
  bf16.dtype = at::kBFloat16;
  const Decoder decoder(c, load_decoder_weights(store, c, bf16));
  CHECK(decoder.dtype() == at::kBFloat16);
  const at::Tensor hidden = decoder.forward(ids_tensor({1, 2, 3, 4}), at::Tensor());
  CHECK(hidden.scalar_type() == at::kBFloat16);
  CHECK(hidden.sizes() == std::vector<int64_t>{1, 4, 32});
}

TEST_CASE("model decoder: logits_at picks rows, the adapter seam sees every projection, bad ids are refused",
          "[model]") {
  ScratchDir dir;
  write_tiny_model(dir.path(), TinyModel::llama31);
  const Decoder decoder = Decoder::load(dir.path());
  at::Tensor ids = at::arange(12, at::kLong).view({2, 6}) * 3;
  RecordingAdapter adapter;
  const at::Tensor hidden = decoder.forward(ids, at::Tensor(), &adapter);
  CHECK(adapter.sites.size() == 2 * 7);
  CHECK(adapter.sites.count("model.layers.1.mlp.down_proj") == 1);
  const at::Tensor full = decoder.logits(hidden);  // [2, 6, V]
  const at::Tensor picked = decoder.logits_at(hidden, at::tensor({1, 0}, at::kLong), at::tensor({5, 2}, at::kLong));
  CHECK(picked.sizes() == std::vector<int64_t>{2, 50});
  // The same rows of the vocabulary projection; a product over 2 rows may round differently from one over 12 (the
  // BLAS picks kernels by shape and by CPU).
  const double diff = std::max((picked[0] - full[1][5]).abs().max().item<double>(),
                               (picked[1] - full[0][2]).abs().max().item<double>());
  INFO("max abs difference " << diff << " (logits up to " << full.abs().max().item<double>() << ")");
  CHECK(diff <= 1e-5 * std::max(1.0, full.abs().max().item<double>()));
  CHECK_THROWS_AS(decoder.forward(ids_tensor({1, 50}), at::Tensor()), abmll::InputError);
}

TEST_CASE("decoder: random weights of a config's shape, reproducible from the seed", "[model][decoder]") {
  const ModelConfig config = abmll::test::small_model_config(32, 48, 2, 4, 2, 50);
  const WeightOptions options{at::kFloat, "cpu"};
  const DecoderWeights a = random_decoder_weights(config, options, 7);
  const DecoderWeights b = random_decoder_weights(config, options, 7);
  const DecoderWeights c = random_decoder_weights(config, options, 8);
  REQUIRE(a.layers.size() == 2);
  CHECK(a.layers[1].mlp.down.weight.sizes() == at::IntArrayRef({32, 48}));
  CHECK(a.embed_tokens.sizes() == at::IntArrayRef({50, 32}));
  CHECK(at::equal(a.layers[1].attention.k.weight, b.layers[1].attention.k.weight));
  CHECK(!at::equal(a.layers[1].attention.k.weight, c.layers[1].attention.k.weight));
  CHECK(at::equal(a.layers[0].input_norm, at::ones({32})));
  CHECK(at::equal(a.norm, at::ones({32})));
  const double sd = a.layers[0].mlp.up.weight.std().item<double>();  // 48 x 32 draws of N(0, 0.02^2)
  CHECK(sd == Approx(0.02).epsilon(0.1));
  CHECK(!a.embed_tokens.requires_grad());
  // A decoder built from them runs.
  const Decoder decoder(config, random_decoder_weights(config, options, 7));
  CHECK(decoder.forward(at::tensor({1, 2, 3}, at::kLong).view({1, 3}), at::Tensor()).sizes() ==
        at::IntArrayRef({1, 3, 32}));
}

TEST_CASE("model rope: GLM's interleaved rotation turns adjacent pairs, a partial one passes the rest", "[model]") {
  // Head size 6, the first 4 rotated: pairs (0, 1) by frequency 1 and (2, 3) by 0.1, at positions 0 and 3.
  const at::Tensor inv_freq = at::tensor({1.0f, 0.1f});
  const at::Tensor positions = at::tensor({0, 3}, at::kLong).view({1, 2});
  const auto [cos, sin] = abmll::model::rope_tables(positions, inv_freq, at::kFloat, 1.0, /*interleaved=*/true);
  REQUIRE(cos.sizes() == at::IntArrayRef({1, 2, 4}));
  const at::Tensor x = at::randn({1, 1, 2, 6});
  const at::Tensor got = abmll::model::apply_rope(x, cos, sin, abmll::model::RopeStyle::interleaved);
  at::Tensor want = x.clone();
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t pair = 0; pair < 2; ++pair) {
      const double angle = static_cast<double>(positions[0][t].item<int64_t>()) * inv_freq[pair].item<double>();
      const double a = x[0][0][t][2 * pair].item<double>(), b = x[0][0][t][2 * pair + 1].item<double>();
      want[0][0][t][2 * pair] = a * std::cos(angle) - b * std::sin(angle);
      want[0][0][t][2 * pair + 1] = b * std::cos(angle) + a * std::sin(angle);
    }
  }
  CHECK((got - want).abs().max().item<double>() < 1e-6);
  // rotate_half's layout turns other pairs: (0, 2) and (1, 3).
  const auto [half_cos, half_sin] = abmll::model::rope_tables(positions, inv_freq, at::kFloat);
  CHECK((abmll::model::apply_rope(x, half_cos, half_sin) - want).abs().max().item<double>() > 1e-2);
}

TEST_CASE("on a GPU, every architecture's decoder gives the CPU's logits and gradients", "[model][cuda]") {
  if (!at::hasCUDA()) {
    WARN("skipped: no CUDA device");
    return;
  }
  // Gemma-2's capped attention, Gemma-3's two RoPE tables and every family's norms run on the device; a causal batch
  // (the fused attention kernels) and a left-padded one (an explicit pattern). Full float32 products (not TF32).
  const abmll::FullFloat32Products full_float32;
  for (TinyModel kind :
       {TinyModel::llama31, TinyModel::qwen2, TinyModel::qwen3, TinyModel::gemma2, TinyModel::gemma3,
        TinyModel::olmo2, TinyModel::phi3, TinyModel::granite, TinyModel::qwen2_moe, TinyModel::olmoe,
        TinyModel::glm4, TinyModel::cohere, TinyModel::granitemoe, TinyModel::deepseek_v3, TinyModel::gpt_oss,
        TinyModel::apertus, TinyModel::exaone4, TinyModel::ministral3, TinyModel::qwen3_5, TinyModel::granite4}) {
    INFO(abmll::test::to_string(kind));
    ScratchDir dir;
    write_tiny_model(dir.path(), kind);
    WeightOptions gpu;
    gpu.dtype = at::kFloat;
    gpu.device = "cuda:0";
    const Decoder on_cpu = Decoder::load(dir.path()), on_gpu = Decoder::load(dir.path(), gpu);
    // Rows of 20 tokens: past the tiny Gemma-3's sliding window of 4.
    const at::Tensor ids = at::randint(50, {2, 20}, at::kLong);
    for (const bool padded : {false, true}) {
      INFO((padded ? "left-padded" : "causal"));
      at::Tensor mask = at::ones({2, 20}, at::kLong);
      if (padded) mask[1][0] = 0;
      const at::Tensor want = on_cpu.logits(on_cpu.forward(ids, mask));
      const at::Tensor hidden = on_gpu.forward(ids, mask);
      const at::Tensor got = on_gpu.logits(hidden).cpu();
      const at::Tensor rows = padded ? at::arange(1, 20) : at::arange(20);
      const double diff = (got.index_select(1, rows) - want.index_select(1, rows)).abs().max().item<double>();
      INFO("largest logit difference " << diff);
      CHECK(diff < 1e-4);
    }
    // Gradients through the whole stack, to an update of layer 0's q_proj (Phi-3: qkv_proj): the same on both
    // devices.
    const Projection q = model_projections(on_cpu.config()).front();
    const at::Tensor update = at::randn(projection_shape(on_cpu.config(), q), at::kFloat) * 0.05;
    auto grad_of = [&](const Decoder& d) {
      const QUpdate adapter(update.to(d.device()).clone().requires_grad_(true), q);  // a leaf of its own
      d.logits(d.forward(ids, at::Tensor(), &adapter)).logsumexp(-1).sum().backward();
      return adapter.weight.grad().cpu();
    };
    const at::Tensor want = grad_of(on_cpu);
    CHECK((grad_of(on_gpu) - want).abs().max().item<double>() < 1e-4 * std::max(1.0, want.abs().max().item<double>()));
  }
}
