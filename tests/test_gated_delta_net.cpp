// Qwen3.5's Gated DeltaNet: the chunked delta rule against the recurrence it stands for, written token by token here
// (values and gradients, chunks that do and do not divide the sequence, key heads serving several value heads), and
// what the decoder does with its one-sequence rows: packed layouts refused, option scoring one row per option.
// Parity with transformers is tests/python/test_qwen3_5.py and test_model_parity.py.
#include <catch2/catch.hpp>

#include <ATen/TensorOperators.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <vector>

#include "eval/option_scoring.h"
#include "model/decoder.h"
#include "model/gated_delta_net.h"
#include "model/scoring.h"
#include "model/shared_prompt.h"
#include "test_support.h"
#include "tiny_model.h"
#include "util/error.h"

using namespace abmll::model;

namespace {

// The gated delta rule one token at a time (transformers' torch_recurrent_gated_delta_rule's definition): per value
// head, S <- exp(g) S; S <- S + k (beta (v - S^T k))^T; o = S^T q, with q and k L2-normed (q times Dk^-1/2).
at::Tensor recurrent_delta_rule(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& g,
                                const at::Tensor& beta) {
  const int64_t b = v.size(0), t = v.size(1), hv = v.size(2), dv = v.size(3), dk = k.size(3);
  const int64_t per_key = hv / k.size(2);
  auto normed = [](const at::Tensor& x) { return x / (x * x).sum(-1, true).add(1e-6).sqrt(); };
  const at::Tensor query = normed(q.repeat_interleave(per_key, 2)) / std::sqrt(static_cast<double>(dk));
  const at::Tensor key = normed(k.repeat_interleave(per_key, 2));
  at::Tensor state = at::zeros({b, hv, dk, dv}, v.options());
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < t; ++i) {
    const at::Tensor k_t = key.select(1, i), q_t = query.select(1, i);  // [B, Hv, Dk]
    state = state * g.select(1, i).exp().view({b, hv, 1, 1});
    const at::Tensor predicted = (state * k_t.unsqueeze(-1)).sum(-2);   // [B, Hv, Dv]
    const at::Tensor delta = (v.select(1, i) - predicted) * beta.select(1, i).unsqueeze(-1);
    state = state + k_t.unsqueeze(-1) * delta.unsqueeze(-2);
    out.push_back((state * q_t.unsqueeze(-1)).sum(-2));
  }
  return at::stack(out, 1);  // [B, T, Hv, Dv]
}

}  // namespace

TEST_CASE("gated delta net: the chunked rule is the token-by-token recurrence, values and gradients", "[model]") {
  at::manual_seed(5);
  const int64_t b = 2, t = 70, hk = 2, hv = 4, dk = 5, dv = 3;
  auto input = [](std::vector<int64_t> shape) { return at::randn(shape, at::kDouble).requires_grad_(true); };
  const at::Tensor q = input({b, t, hk, dk}), k = input({b, t, hk, dk}), v = input({b, t, hv, dv});
  // Decays in (-1.5, 0) and rates in (0, 1), as the layer makes them.
  const at::Tensor g = (-1.5 * at::rand({b, t, hv}, at::kDouble)).requires_grad_(true);
  const at::Tensor beta = at::sigmoid(at::randn({b, t, hv}, at::kDouble)).detach().requires_grad_(true);
  const at::Tensor want = recurrent_delta_rule(q, k, v, g, beta);
  const at::Tensor weights = at::randn(want.sizes(), at::kDouble);
  const auto want_grads = torch::autograd::grad({(want * weights).sum()}, {q, k, v, g, beta});
  for (int64_t chunk : {int64_t{64}, int64_t{7}, int64_t{1}}) {  // 70 = 64 + 6, 10 x 7, 70 x 1
    INFO("chunk " << chunk);
    const at::Tensor got = chunk_gated_delta_rule(q, k, v, g, beta, chunk);
    REQUIRE(got.sizes() == want.sizes());
    CHECK((got - want).abs().max().item<double>() < 1e-12);
    const auto grads = torch::autograd::grad({(got * weights).sum()}, {q, k, v, g, beta});
    for (std::size_t i = 0; i < grads.size(); ++i) {
      INFO("gradient " << i);
      CHECK((grads[i] - want_grads[i]).abs().max().item<double>() < 1e-10);
    }
  }
  // float32 in, float32 out (computed in float32).
  const at::Tensor narrow = chunk_gated_delta_rule(q.detach().to(at::kFloat), k.detach().to(at::kFloat),
                                                   v.detach().to(at::kFloat), g.detach().to(at::kFloat),
                                                   beta.detach().to(at::kFloat));
  CHECK(narrow.scalar_type() == at::kFloat);
  CHECK((narrow.to(at::kDouble) - want).abs().max().item<double>() < 1e-5);
}

TEST_CASE("gated delta net: rows are single sequences; packed rows are refused, options get a row each", "[model]") {
  abmll::test::ScratchDir dir;
  const Decoder decoder = abmll::test::load_tiny_model(dir.path(), abmll::test::TinyModel::qwen3_5);
  REQUIRE(decoder.config().recurrent());
  // Two options after one prompt packed in a row: the second option's tokens would follow the first's in the
  // recurrence, which attention's pattern cannot undo.
  const std::vector<SharedPromptItem> shared = {{{1, 5, 9}, {{7, 2}, {8}}, 0}};
  CHECK_THROWS_WITH(score_shared_prompts(decoder, shared), Catch::Contains("read each row as one sequence"));

  // Option scoring with share_prompt (the default) scores each option in its own row: the scores of each pair alone.
  const std::vector<abmll::eval::OptionQuery> queries = {{{1, 5, 9}, {{7, 2}, {8}, {3, 3, 4}}},
                                                         {{1, 11}, {{12}, {13, 4}}}};
  const abmll::eval::OptionLogLikelihoods got = abmll::eval::option_log_likelihoods(decoder, queries, nullptr, {});
  for (std::size_t q = 0; q < queries.size(); ++q)
    for (std::size_t o = 0; o < queries[q].options.size(); ++o) {
      const ContinuationScores alone = score_continuations(decoder, {{queries[q].prompt, queries[q].options[o], 0}});
      CHECK(std::abs(got[q][0][o] - alone.log_prob[0].item<double>()) < 1e-5);
    }
}
