// BatchedLora through the decoder's adapter seam on random tiny models: gradients by finite differences (float64),
// a batch mixing adapter groups equals each sequence run alone with its own adapter, dropout is reproducible and
// off in evaluation, float32 adapters on a bfloat16 base. PEFT parity is tests/python/test_lora_parity.py.
#include <catch2/catch.hpp>

#include <ATen/Context.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <vector>

#include "io/tensor_store.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "test_support.h"
#include "tiny_model.h"
#include "util/error.h"

using namespace abmll::model;
using abmll::test::ScratchDir;

namespace {

Decoder load_tiny(const ScratchDir& dir, abmll::test::TinyModel kind, at::ScalarType dtype) {
  return abmll::test::load_tiny_model(dir.path(), kind, dtype);
}

LoraSettings settings(std::set<Projection> targets, int64_t rank = 2) {
  LoraSettings s;
  s.rank = rank;
  s.alpha = 3;
  s.targets = std::move(targets);
  return s;
}

// G groups of random factors (B non-zero) at every target, in `dtype`, requiring grad when asked.
BatchedLora random_lora(const ModelConfig& c, const LoraSettings& s, int64_t groups, at::ScalarType dtype,
                        bool grad) {
  BatchedLora lora(s, groups);
  for (const LinearSite& site : lora_sites(c, s)) {
    const auto shape = projection_shape(c, site.projection);  // [out, in]
    lora.set_factors(site, {(at::randn({groups, s.rank, shape[1]}, dtype) * 0.3).set_requires_grad(grad),
                            (at::randn({groups, shape[0], s.rank}, dtype) * 0.3).set_requires_grad(grad)});
  }
  return lora;
}

// Right-padded [B, T] ids and mask from sequences.
std::pair<at::Tensor, at::Tensor> pad_right(const std::vector<std::vector<int64_t>>& seqs) {
  int64_t t = 0;
  for (const auto& s : seqs) t = std::max<int64_t>(t, static_cast<int64_t>(s.size()));
  at::Tensor ids = at::zeros({static_cast<int64_t>(seqs.size()), t}, at::kLong), mask = at::zeros_like(ids);
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const auto n = static_cast<int64_t>(seqs[i].size());
    ids[static_cast<int64_t>(i)].narrow(0, 0, n).copy_(at::tensor(seqs[i], at::kLong));
    mask[static_cast<int64_t>(i)].narrow(0, 0, n).fill_(1);
  }
  return {ids, mask};
}

}  // namespace

TEST_CASE("model lora: gradients reach A and B (finite differences, float64), never the base weights",
          "[model][lora]") {
  // Qwen3 too: q_proj's adapter reaches the loss through the RMSNorm of each query head.
  const auto kind = GENERATE(abmll::test::TinyModel::qwen2, abmll::test::TinyModel::qwen3);
  INFO(abmll::test::to_string(kind));
  ScratchDir dir;
  const Decoder decoder = load_tiny(dir, kind, at::kDouble);
  at::manual_seed(11);
  BatchedLora lora = random_lora(decoder.config(), settings({Projection::q, Projection::v, Projection::down}), 2,
                                 at::kDouble, true);
  const auto [ids, mask] = pad_right({{3, 17, 42, 8, 1}, {5, 9, 11}});
  lora.set_group_of_sequence(at::tensor({1, 0}, at::kLong));
  const at::Tensor probe = at::randn({2, 5, 32}, at::kDouble) * mask.unsqueeze(-1);  // ignores padding rows
  auto loss = [&] { return (decoder.forward(ids, mask, &lora) * probe).sum(); };
  loss().backward();

  const auto trainable = lora.trainable_tensors();
  REQUIRE(trainable.size() == 2 * 3 * 2);  // layers x targets x (A, B)
  double worst = 0;
  const double eps = 1e-6;
  for (const at::Tensor& t : trainable) {
    REQUIRE(t.grad().defined());
    at::Tensor flat = t.detach().view(-1);  // shares t's storage
    for (int64_t k : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
      double fd = 0;
      {
        at::NoGradGuard no_grad;
        const double v = flat[k].item<double>();
        flat[k].fill_(v + eps);
        const double up = loss().item<double>();
        flat[k].fill_(v - eps);
        const double down = loss().item<double>();
        flat[k].fill_(v);
        fd = (up - down) / (2 * eps);
      }
      const double analytic = t.grad().view(-1)[k].item<double>();
      worst = std::max(worst, std::abs(fd - analytic) / std::max(1.0, std::abs(analytic)));
    }
  }
  WARN("LoRA gradients vs finite differences: largest relative difference " << worst);
  CHECK(worst < 1e-6);
  // Group 0's A at layer 0 q gets a gradient from sequence 1 only, group 1's from sequence 0 only: both non-zero.
  const at::Tensor ga = lora.factors({0, Projection::q})->a.grad();
  CHECK(ga[0].abs().sum().item<double>() > 0);
  CHECK(ga[1].abs().sum().item<double>() > 0);

  const DecoderWeights& w = decoder.weights();
  for (const at::Tensor& t : {w.embed_tokens, w.layers[0].attention.q.weight, w.layers[1].mlp.down.weight, w.norm}) {
    CHECK_FALSE(t.requires_grad());
    CHECK_FALSE(t.grad().defined());
  }
}

TEST_CASE("model lora: one batch mixing two adapters equals each sequence alone with its own", "[model][lora]") {
  for (auto kind : {abmll::test::TinyModel::llama31, abmll::test::TinyModel::qwen2, abmll::test::TinyModel::qwen3,
                    abmll::test::TinyModel::phi3}) {
    INFO(abmll::test::to_string(kind));
    ScratchDir dir;
    const Decoder decoder = load_tiny(dir, kind, at::kFloat);
    at::manual_seed(5);
    const std::vector<Projection> projections = model_projections(decoder.config());
    const auto all = std::set<Projection>(projections.begin(), projections.end());
    const BatchedLora both = random_lora(decoder.config(), settings(all, 4), 2, at::kFloat, false);
    const std::vector<std::vector<int64_t>> seqs = {{3, 17, 42, 8, 1, 49}, {5, 9, 11, 2}, {7, 7, 30, 12, 40}};
    const std::vector<int64_t> groups = {1, 0, 1};
    auto [ids, mask] = pad_right(seqs);
    BatchedLora batched = both;
    batched.set_group_of_sequence(at::tensor(groups, at::kLong));
    const at::Tensor logits = decoder.logits(decoder.forward(ids, mask, &batched));  // [3, 6, V]
    const at::Tensor base = decoder.logits(decoder.forward(ids, mask));

    for (std::size_t i = 0; i < seqs.size(); ++i) {
      BatchedLora own(both.settings(), 1);
      for (const auto& [site, f] : both.all_factors())
        own.set_factors(site, {f.a.narrow(0, groups[i], 1), f.b.narrow(0, groups[i], 1)});
      const auto [one_ids, one_mask] = pad_right({seqs[i]});
      const at::Tensor alone = decoder.logits(decoder.forward(one_ids, one_mask, &own))[0];  // [n, V]
      const at::Tensor got = logits[static_cast<int64_t>(i)].narrow(0, 0, alone.size(0));
      CHECK((got - alone).abs().max().item<float>() < 1e-5f);
      // And the adapter does change the output.
      CHECK((got - base[static_cast<int64_t>(i)].narrow(0, 0, alone.size(0))).abs().max().item<float>() > 1e-2f);
    }
  }
}

TEST_CASE("model lora: B = 0 leaves the model unchanged, dropout is seeded and off in evaluation", "[model][lora]") {
  ScratchDir dir;
  const Decoder decoder = load_tiny(dir, abmll::test::TinyModel::llama31, at::kFloat);
  const auto [ids, mask] = pad_right({{3, 17, 42, 8, 1, 49}, {5, 9, 11, 2}});
  const at::Tensor base = decoder.forward(ids, mask);

  LoraSettings s = settings({Projection::k, Projection::up});
  const BatchedLora fresh = BatchedLora::zeros_b(decoder.config(), s, 1, 0.1, at::kFloat, at::kCPU);
  CHECK(decoder.forward(ids, mask, &fresh).equal(base));

  s.dropout = 0.5;
  at::manual_seed(2);
  BatchedLora lora = random_lora(decoder.config(), s, 1, at::kFloat, false);
  const at::Tensor eval = decoder.forward(ids, mask, &lora);
  lora.set_training(true, 7);
  const at::Tensor a = decoder.forward(ids, mask, &lora), b = decoder.forward(ids, mask, &lora);
  lora.set_training(true, 8);
  const at::Tensor c = decoder.forward(ids, mask, &lora);
  CHECK(a.equal(b));
  CHECK_FALSE(a.equal(c));
  CHECK_FALSE(a.equal(eval));
  lora.set_training(false);
  CHECK(decoder.forward(ids, mask, &lora).equal(eval));
  LoraSettings no_dropout = s;
  no_dropout.dropout = 0;
  BatchedLora same(no_dropout, 1);
  for (const auto& [site, f] : lora.all_factors()) same.set_factors(site, f);
  CHECK(decoder.forward(ids, mask, &same).equal(eval));
}

TEST_CASE("model lora: float32 adapters on a bfloat16 base, shapes, groups and settings are checked",
          "[model][lora]") {
  ScratchDir dir;
  const Decoder decoder = load_tiny(dir, abmll::test::TinyModel::qwen2, at::kBFloat16);
  const LoraSettings s = settings({Projection::o, Projection::gate});
  at::manual_seed(4);
  BatchedLora lora = random_lora(decoder.config(), s, 3, at::kFloat, true);
  const auto [ids, mask] = pad_right({{1, 2, 3}, {4, 5}});
  CHECK_THROWS_AS(decoder.forward(ids, mask, &lora), abmll::Error);  // 3 groups, none chosen
  CHECK_THROWS_AS(lora.set_group_of_sequence(at::tensor({0, 3}, at::kLong)), abmll::Error);
  lora.set_group_of_sequence(at::tensor({2, 0}, at::kLong));
  const at::Tensor h = decoder.forward(ids, mask, &lora);
  CHECK(h.scalar_type() == at::kBFloat16);
  CHECK_FALSE(h.isnan().any().item<bool>());
  h.to(at::kFloat).sum().backward();
  CHECK(lora.factors({1, Projection::gate})->b.grad().scalar_type() == at::kFloat);

  // An empty batch or sequence passes through, with one group and with several.
  BatchedLora single = random_lora(decoder.config(), s, 1, at::kFloat, false);
  const int64_t in = single.factors({0, Projection::o})->a.size(2), out = single.factors({0, Projection::o})->b.size(1);
  CHECK(single.delta(at::zeros({2, 0, in}, at::kBFloat16), {0, Projection::o}).sizes() ==
        at::IntArrayRef({2, 0, out}));
  CHECK(single.delta(at::zeros({0, 3, in}, at::kBFloat16), {0, Projection::o}).sizes() ==
        at::IntArrayRef({0, 3, out}));
  lora.set_group_of_sequence(at::tensor({2, 0}, at::kLong));
  CHECK(lora.delta(at::zeros({2, 0, in}, at::kBFloat16), {0, Projection::o}).sizes() == at::IntArrayRef({2, 0, out}));

  CHECK_THROWS_AS(lora.set_factors({0, Projection::q}, *lora.factors({0, Projection::o})), abmll::Error);
  CHECK_THROWS_AS(lora.set_factors({0, Projection::o}, {at::zeros({3, 2, 32}), at::zeros({3, 32, 3})}),
                  abmll::Error);
  LoraSettings bad = s;
  bad.rank = 0;
  CHECK_THROWS_AS(BatchedLora(bad, 1), abmll::InputError);
  CHECK((parse_lora_targets({"q_proj", "down"}, "x") == std::set<Projection>{Projection::q, Projection::down}));
  CHECK(parse_lora_targets({"all-linear"}, "x").size() == 7);
  CHECK_THROWS_AS(parse_lora_targets({"lm_head"}, "x"), abmll::InputError);
  LoraSettings rs = s;
  rs.rank = 16;
  rs.alpha = 8;
  CHECK(rs.scale() == 0.5);
  rs.rslora = true;
  CHECK(rs.scale() == 2.0);
}
