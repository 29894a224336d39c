// Continuation scoring on random tiny models: equals the log-softmax of Decoder::logits at the predicting positions
// (each item run alone with its own adapter), chunking changes nothing, and its custom backward gives the gradients
// of the plain log_softmax path (float64). Parity with transformers is tests/python/test_scoring_parity.py.
#include <catch2/catch.hpp>

#include <ATen/Context.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <optional>
#include <vector>

#include "io/safetensors_writer.h"
#include "io/tensor_store.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "model/peft_adapter.h"
#include "model/scoring.h"
#include "test_support.h"
#include "tiny_model.h"
#include "util/error.h"

using namespace abmll::model;
using abmll::test::ScratchDir;

namespace {

Decoder load_tiny(const ScratchDir& dir, abmll::test::TinyModel kind, at::ScalarType dtype) {
  return abmll::test::load_tiny_model(dir.path(), kind, dtype);
}

BatchedLora random_lora(const ModelConfig& c, int64_t groups, at::ScalarType dtype, bool grad) {
  LoraSettings s;
  s.rank = 2;
  s.alpha = 4;
  s.targets = {Projection::q, Projection::v, Projection::o, Projection::down};
  BatchedLora lora(s, groups);
  for (const LinearSite& site : lora_sites(c, s)) {
    const auto shape = projection_shape(c, site.projection);
    lora.set_factors(site, {(at::randn({groups, s.rank, shape[1]}, dtype) * 0.3).set_requires_grad(grad),
                            (at::randn({groups, shape[0], s.rank}, dtype) * 0.3).set_requires_grad(grad)});
  }
  return lora;
}

const std::vector<ScoringItem> kItems = {
    {{3, 17, 42}, {8, 1}, 1}, {{5}, {9, 11, 2, 7}, 0}, {{7, 7, 30, 12}, {}, 1}, {{4, 4}, {49}, 0}};

// The reference: item run alone through Decoder::logits, log_softmax over the whole vocabulary.
at::Tensor naive_score(const Decoder& decoder, const ScoringItem& item, const LinearAdapter* adapter) {
  std::vector<int64_t> ids = item.prompt;
  ids.insert(ids.end(), item.continuation.begin(), item.continuation.end());
  const at::Tensor logits = decoder.logits(decoder.forward(at::tensor(ids, at::kLong).view({1, -1}), at::Tensor(), adapter))[0];
  const at::Tensor lsm = at::log_softmax(logits.to(at::promote_types(logits.scalar_type(), at::kFloat)), -1);
  at::Tensor sum = at::zeros({}, lsm.options());
  const auto p = static_cast<int64_t>(item.prompt.size());
  for (std::size_t j = 0; j < item.continuation.size(); ++j)
    sum = sum + lsm[p - 1 + static_cast<int64_t>(j)][item.continuation[j]];
  return sum;
}

// Group g of a G-group adapter as a one-group adapter (sharing the tensors, so gradients land in the same place).
BatchedLora one_group(const BatchedLora& lora, int64_t g) {
  BatchedLora own(lora.settings(), 1);
  for (const auto& [site, f] : lora.all_factors()) own.set_factors(site, {f.a.narrow(0, g, 1), f.b.narrow(0, g, 1)});
  return own;
}

}  // namespace

TEST_CASE("model scoring: equals log_softmax of Decoder::logits at the predicting positions, chunked or not",
          "[model][scoring]") {
  for (auto kind : {abmll::test::TinyModel::llama31, abmll::test::TinyModel::qwen2, abmll::test::TinyModel::qwen3}) {
    INFO(abmll::test::to_string(kind));
    ScratchDir dir;
    const Decoder decoder = load_tiny(dir, kind, at::kFloat);
    at::manual_seed(6);
    BatchedLora lora = random_lora(decoder.config(), 2, at::kFloat, false);
    const ContinuationScores scores = score_continuations(decoder, kItems, &lora);
    REQUIRE(scores.log_prob.sizes() == std::vector<int64_t>{4});
    CHECK(scores.log_prob.scalar_type() == at::kFloat);
    CHECK(scores.tokens.equal(at::tensor({2, 4, 0, 1}, at::kLong)));
    float worst = 0;
    for (std::size_t i = 0; i < kItems.size(); ++i) {
      const BatchedLora own = one_group(lora, kItems[i].group);
      const float want = naive_score(decoder, kItems[i], &own).item<float>();
      worst = std::max(worst, std::abs(scores.log_prob[static_cast<int64_t>(i)].item<float>() - want));
    }
    WARN("scoring vs Decoder::logits: max abs diff " << worst);
    CHECK(worst < 1e-5f);
    CHECK(scores.log_prob[2].item<float>() == 0.0f);

    ScoringOptions tiny_chunks;
    tiny_chunks.max_chunk_bytes = 2 * 50 * 4;  // two rows of V = 50 float32
    const ContinuationScores chunked = score_continuations(decoder, kItems, &lora, tiny_chunks);
    // The same sums in other chunks: a few float32 ulps of log-probabilities up to ~10 apart.
    CHECK((chunked.log_prob - scores.log_prob).abs().max().item<float>() < 1e-5f);
    // Without an adapter: the base model's scores.
    const ContinuationScores base = score_continuations(decoder, kItems);
    CHECK(std::abs(base.log_prob[1].item<float>() - naive_score(decoder, kItems[1], nullptr).item<float>()) < 1e-5f);
  }
}

TEST_CASE("model scoring: the chunked backward gives the plain log_softmax gradients (float64)", "[model][scoring]") {
  ScratchDir dir;
  const Decoder decoder = load_tiny(dir, abmll::test::TinyModel::qwen2, at::kDouble);
  at::manual_seed(8);
  BatchedLora lora = random_lora(decoder.config(), 2, at::kDouble, true);
  const at::Tensor weights = at::tensor({0.5, -1.0, 2.0, 1.5}, at::kDouble);
  ScoringOptions options;
  options.max_chunk_bytes = 3 * 50 * 4;  // three rows per chunk: 7 scored tokens make chunks of 3, 3, 1
  const ContinuationScores scores = score_continuations(decoder, kItems, &lora, options);
  CHECK(scores.log_prob.scalar_type() == at::kDouble);
  (scores.log_prob * weights).sum().backward();
  std::vector<at::Tensor> got;
  for (const auto& t : lora.trainable_tensors()) got.push_back(t.grad().clone()), t.mutable_grad().reset();

  at::Tensor naive = at::zeros({}, at::kDouble);
  for (std::size_t i = 0; i < kItems.size(); ++i) {
    const BatchedLora own = one_group(lora, kItems[i].group);
    naive = naive + weights[static_cast<int64_t>(i)] * naive_score(decoder, kItems[i], &own);
  }
  naive.backward();
  const auto trainable = lora.trainable_tensors();
  double worst = 0;
  for (std::size_t k = 0; k < got.size(); ++k)
    worst = std::max(worst, (got[k] - trainable[k].grad()).abs().max().item<double>());
  WARN("scoring gradients vs plain log_softmax: max abs diff " << worst);
  CHECK(worst < 1e-10);
}

TEST_CASE("model scoring: empty prompts and ids outside the vocabulary are input errors", "[model][scoring]") {
  ScratchDir dir;
  const Decoder decoder = load_tiny(dir, abmll::test::TinyModel::llama31, at::kFloat);
  CHECK_THROWS_AS(score_continuations(decoder, {{{}, {1, 2}, 0}}), abmll::InputError);
  CHECK_THROWS_AS(score_continuations(decoder, {{{1}, {50}, 0}}), abmll::InputError);
}

// Hidden: run by tests/python/test_scoring_parity.py. Scores the items of the JSON file $ABMLL_SCORE_ITEMS
// ([{"prompt": [ids], "continuation": [ids]}, ...]) under the model folder $ABMLL_SCORE_MODEL, with the PEFT adapter
// folder $ABMLL_SCORE_ADAPTER if set, in one batch; writes log_prob [I] and tokens [I] to $ABMLL_SCORE_OUT.
TEST_CASE("model scoring: score items for the Python parity test", "[.score_export]") {
  const char* model = std::getenv("ABMLL_SCORE_MODEL");
  const char* items_file = std::getenv("ABMLL_SCORE_ITEMS");
  const char* out = std::getenv("ABMLL_SCORE_OUT");
  const char* adapter_dir = std::getenv("ABMLL_SCORE_ADAPTER");
  REQUIRE(model != nullptr);
  REQUIRE(items_file != nullptr);
  REQUIRE(out != nullptr);
  const Decoder decoder = Decoder::load(model);
  std::vector<ScoringItem> items;
  for (const auto& j : nlohmann::json::parse(abmll::test::read_text(items_file)))
    items.push_back({j.at("prompt").get<std::vector<int64_t>>(), j.at("continuation").get<std::vector<int64_t>>(), 0});
  std::optional<BatchedLora> adapter;
  if (adapter_dir != nullptr && *adapter_dir != '\0') adapter = load_peft_adapter(adapter_dir, decoder.config());
  ScoringOptions options;
  options.max_chunk_bytes = 3 * decoder.config().vocab_size * 4;  // several chunks
  const ContinuationScores scores = score_continuations(decoder, items, adapter ? &*adapter : nullptr, options);
  abmll::io::write_safetensors(out, {{"log_prob", scores.log_prob}, {"tokens", scores.tokens}});
}
