// Packing a prompt's continuations into one row, and several prompts after their common prefix (model/shared_prompt.h):
// the exact layouts on small cases, and on tiny random models (Llama and Qwen2, float64) log-probabilities and their
// gradients with respect to a LoRA adapter equal those of scoring every (prompt, continuation) pair as its own
// right-padded sequence.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <vector>

#include "model/lora.h"
#include "model/scoring.h"
#include "model/shared_prompt.h"
#include "test_support.h"
#include "tiny_model.h"
#include "util/error.h"

using namespace abmll;

TEST_CASE("shared prompt: packed row layout", "[model][scoring]") {
  // Prompt [5, 6, 7]; continuations [1, 2, 3], [4], [], [8, 9]; a second, shorter item pads.
  const std::vector<model::SharedPromptItem> items = {{{5, 6, 7}, {{1, 2, 3}, {4}, {}, {8, 9}}, 2},
                                                      {{5}, {{1}}, 0}};
  CHECK(model::shared_prompt_length(items[0]) == 3 + 2 + 0 + 0 + 1);
  const model::SharedPromptBatch b = model::pack_shared_prompts(items);
  const int64_t t = 6;
  REQUIRE(b.input_ids.sizes() == at::IntArrayRef({2, t}));
  const std::vector<int64_t> ids(b.input_ids.data_ptr<int64_t>(), b.input_ids.data_ptr<int64_t>() + 2 * t);
  CHECK(ids == std::vector<int64_t>{5, 6, 7, 1, 2, 8, /*row 1*/ 5, 0, 0, 0, 0, 0});
  const std::vector<int64_t> pos(b.layout.positions.data_ptr<int64_t>(), b.layout.positions.data_ptr<int64_t>() + t);
  CHECK(pos == std::vector<int64_t>{0, 1, 2, 3, 4, 3});
  // Row 0's pattern, query by query: the prompt is causal; segment [1, 2] sees the prompt and itself; segment [8]
  // sees the prompt and itself, not the other segment.
  const std::vector<std::vector<int>> expected = {{1, 0, 0, 0, 0, 0}, {1, 1, 0, 0, 0, 0}, {1, 1, 1, 0, 0, 0},
                                                  {1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 0}, {1, 1, 1, 0, 0, 1}};
  const at::Tensor pattern = b.layout.pattern.to(at::kInt);
  for (int64_t q = 0; q < t; ++q)
    for (int64_t k = 0; k < t; ++k) CHECK(pattern[0][0][q][k].item<int>() == expected[q][k]);
  // Row 1: one real token, padding sees only itself.
  for (int64_t q = 1; q < t; ++q)
    for (int64_t k = 0; k < t; ++k) CHECK(pattern[1][0][q][k].item<int>() == (q == k ? 1 : 0));
  // Predicting tokens: [1,2,3] at 2, 3, 4; [4] at 2; [8,9] at 2, 5; row 1's [1] at 6 + 0.
  CHECK(b.rows == std::vector<int64_t>{2, 3, 4, 2, 2, 5, 6});
  CHECK(b.targets == std::vector<int64_t>{1, 2, 3, 4, 8, 9, 1});
  CHECK(b.owner == std::vector<int64_t>{0, 0, 0, 1, 3, 3, 4});
  CHECK(b.offsets == std::vector<int64_t>{0, 4, 5});
  CHECK(b.lengths == std::vector<int64_t>{3, 1, 0, 2, 1});
  CHECK(b.groups == std::vector<int64_t>{2, 0});
  CHECK_THROWS_AS(model::pack_shared_prompts({{{}, {{1}}, 0}}), InputError);
}

TEST_CASE("shared prompt: rows of several prompts after a common prefix", "[model][scoring]") {
  // Prefix [5, 6]; item A: prompt [7], continuations [1, 2], [3]; item B: prompt [8, 9], continuation [4].
  // Row: 5 6 | 7 1 | 8 9 (A's segment [1, 2] has input [1]; [3] and [4] have none).
  const std::vector<model::PromptRow> rows = {{{5, 6}, {{{7}, {{1, 2}, {3}}, 0}, {{8, 9}, {{4}}, 0}}, 3}};
  CHECK(model::prompt_row_length(rows[0]) == 2 + 2 + 2);
  const model::SharedPromptBatch b = model::pack_prompt_rows(rows);
  const int64_t t = 6;
  REQUIRE(b.input_ids.sizes() == at::IntArrayRef({1, t}));
  const std::vector<int64_t> ids(b.input_ids.data_ptr<int64_t>(), b.input_ids.data_ptr<int64_t>() + t);
  CHECK(ids == std::vector<int64_t>{5, 6, 7, 1, 8, 9});
  const std::vector<int64_t> pos(b.layout.positions.data_ptr<int64_t>(), b.layout.positions.data_ptr<int64_t>() + t);
  CHECK(pos == std::vector<int64_t>{0, 1, 2, 3, 2, 3});  // A's 7 and B's 8 both continue the prefix
  // Each token sees the prefix, its item's prompt and its own segment: what it would see in its sequence alone.
  const std::vector<std::vector<int>> expected = {{1, 0, 0, 0, 0, 0}, {1, 1, 0, 0, 0, 0}, {1, 1, 1, 0, 0, 0},
                                                  {1, 1, 1, 1, 0, 0}, {1, 1, 0, 0, 1, 0}, {1, 1, 0, 0, 1, 1}};
  const at::Tensor pattern = b.layout.pattern.to(at::kInt);
  for (int64_t q = 0; q < t; ++q)
    for (int64_t k = 0; k < t; ++k) CHECK(pattern[0][0][q][k].item<int>() == expected[q][k]);
  // [1, 2]: 1 at A's prompt end (2), 2 at its segment (3); [3] at 2; [4] at B's prompt end (5).
  CHECK(b.rows == std::vector<int64_t>{2, 3, 2, 5});
  CHECK(b.targets == std::vector<int64_t>{1, 2, 3, 4});
  CHECK(b.owner == std::vector<int64_t>{0, 0, 1, 2});
  CHECK(b.offsets == std::vector<int64_t>{0, 2, 3});
  CHECK(b.lengths == std::vector<int64_t>{2, 1, 1});
  CHECK(b.groups == std::vector<int64_t>{3});
  CHECK_THROWS_AS(model::pack_prompt_rows({{{5}, {}, 0}}), InputError);
  CHECK_THROWS_AS(model::pack_prompt_rows({{{5}, {{{}, {{1}}, 0}}, 0}}), InputError);
}

TEST_CASE("shared prompt: scores and adapter gradients equal separate scoring", "[model][scoring]") {
  // Gemma-3's sliding layer (a window of 4) holds rows of several prompts to each prompt's own positions; OLMoE
  // routes every token of a packed row to its own experts.
  const auto kind = GENERATE(test::TinyModel::llama31, test::TinyModel::qwen2, test::TinyModel::qwen3,
                             test::TinyModel::gemma3, test::TinyModel::olmoe, test::TinyModel::deepseek_v3,
                             test::TinyModel::gpt_oss);
  INFO(test::to_string(kind));
  test::ScratchDir dir;
  const model::Decoder decoder = test::load_tiny_model(dir.path(), kind, at::kDouble);
  model::LoraSettings settings;
  settings.rank = 2;
  settings.alpha = 4;
  const std::vector<model::Projection> all = model::model_projections(decoder.config());
  settings.targets = {all.begin(), all.end()};  // a mixture of experts' attention projections; or these:
  if (decoder.config().moe.num_experts == 0)
    settings.targets = {model::Projection::q, model::Projection::k, model::Projection::v, model::Projection::o,
                        model::Projection::up, model::Projection::down};
  const int64_t groups = 2;
  at::manual_seed(3);
  std::vector<at::Tensor> leaves;
  model::BatchedLora lora(settings, groups);
  for (const model::LinearSite& site : model::lora_sites(decoder.config(), settings)) {
    const auto shape = model::projection_shape(decoder.config(), site.projection);
    at::Tensor a = (at::randn({groups, 2, shape[1]}, at::kDouble) * 0.3).requires_grad_();
    at::Tensor b = (at::randn({groups, shape[0], 2}, at::kDouble) * 0.3).requires_grad_();
    leaves.push_back(a);
    leaves.push_back(b);
    lora.set_factors(site, {a, b});
  }
  const std::vector<model::SharedPromptItem> items = {
      {{3, 17, 42, 9}, {{8, 1, 4}, {9}, {}, {30, 31}}, 1},
      {{5}, {{9, 11, 2, 7}, {4}}, 0},
      {{7, 7, 30, 12, 1, 2, 3}, {{40}, {41}, {42}}, 1},
  };
  const at::Tensor weights = at::randn({9}, at::kDouble);  // a random combination to differentiate

  const model::ContinuationScores shared = model::score_shared_prompts(decoder, items, &lora);
  REQUIRE(shared.log_prob.size(0) == 9);
  const std::vector<at::Tensor> grad_shared = torch::autograd::grad({(shared.log_prob * weights).sum()}, leaves);

  std::vector<model::ScoringItem> pairs;
  for (const auto& item : items)
    for (const auto& c : item.continuations) pairs.push_back({item.prompt, c, item.group});
  const model::ContinuationScores separate = model::score_continuations(decoder, pairs, &lora);
  const std::vector<at::Tensor> grad_separate = torch::autograd::grad({(separate.log_prob * weights).sum()}, leaves);

  const double value_diff = (shared.log_prob - separate.log_prob).abs().max().item<double>();
  double grad_diff = 0, grad_scale = 0;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    grad_diff = std::max(grad_diff, (grad_shared[i] - grad_separate[i]).abs().max().item<double>());
    grad_scale = std::max(grad_scale, grad_separate[i].abs().max().item<double>());
  }
  WARN("shared prompt vs separate: max |d log p| " << value_diff << ", max |d grad| " << grad_diff << " (grad scale "
                                                   << grad_scale << ")");
  CHECK(at::equal(shared.tokens, separate.tokens));
  CHECK(value_diff < 1e-10);
  CHECK(grad_scale > 1e-3);  // the adapter matters
  CHECK(grad_diff < 1e-10 * std::max(1.0, grad_scale));
  CHECK(shared.log_prob[2].item<double>() == 0.0);  // the empty continuation

  // The same pairs with the items in rows after common prefixes: items 0 and 2 after [3, 17] (group 1), item 1 alone.
  const auto rest = [](const std::vector<int64_t>& prompt, std::size_t n) {
    return std::vector<int64_t>(prompt.begin() + static_cast<std::ptrdiff_t>(n), prompt.end());
  };
  std::vector<model::SharedPromptItem> with_prefix = items;
  with_prefix[2].prompt = {3, 17, 42, 5, 6};  // shares [3, 17, 42] with item 0
  const std::vector<model::PromptRow> rows = {
      {{3, 17, 42}, {{rest(items[0].prompt, 3), items[0].continuations, 1},
                     {rest(with_prefix[2].prompt, 3), items[2].continuations, 1}}, 1},
      {{}, {items[1]}, 0}};
  const model::ContinuationScores packed = model::score_prompt_rows(decoder, rows, &lora);
  const std::vector<at::Tensor> grad_packed = torch::autograd::grad({(packed.log_prob * weights).sum()}, leaves);
  std::vector<model::ScoringItem> row_pairs;  // in the rows' order: item 0, item 2, item 1
  for (std::size_t i : {0, 2, 1})
    for (const auto& c : with_prefix[i].continuations)
      row_pairs.push_back({with_prefix[i].prompt, c, with_prefix[i].group});
  const model::ContinuationScores alone = model::score_continuations(decoder, row_pairs, &lora);
  const std::vector<at::Tensor> grad_alone = torch::autograd::grad({(alone.log_prob * weights).sum()}, leaves);
  const double row_value_diff = (packed.log_prob - alone.log_prob).abs().max().item<double>();
  double row_grad_diff = 0;
  for (std::size_t i = 0; i < leaves.size(); ++i)
    row_grad_diff = std::max(row_grad_diff, (grad_packed[i] - grad_alone[i]).abs().max().item<double>());
  WARN("prompts after a common prefix vs separate: max |d log p| " << row_value_diff << ", max |d grad| "
                                                                   << row_grad_diff);
  CHECK(at::equal(packed.tokens, alone.tokens));
  CHECK(row_value_diff < 1e-10);
  CHECK(row_grad_diff < 1e-10 * std::max(1.0, grad_scale));
}
