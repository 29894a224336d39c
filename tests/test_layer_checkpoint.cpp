// Gradient checkpointing: checkpointed() on a small function, and per decoder layer on a random tiny model in float64
// (with LoRA dropout on, so recomputation must redraw the same masks, and with factors that are not leaves, as
// sampled adapters are): outputs and gradients equal those without checkpointing. The policy a step runs under after
// running out of memory (recompute_policy.h).
#include <catch2/catch.hpp>

#include <ATen/Context.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/tensor.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "io/tensor_store.h"
#include "model/layer_checkpoint.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "model/recompute_policy.h"
#include "model/scoring.h"
#include "test_support.h"
#include "tiny_model.h"

using namespace abmll::model;
using abmll::test::ScratchDir;

namespace {

// Nodes of an autograd graph whose name contains `part` (each node counted once).
int64_t count_nodes(torch::autograd::Node* root, const std::string& part) {
  std::set<const torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack = {root};
  int64_t count = 0;
  while (!stack.empty()) {
    torch::autograd::Node* node = stack.back();
    stack.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    if (node->name().find(part) != std::string::npos) ++count;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return count;
}

}  // namespace

TEST_CASE("model checkpoint: checkpointed() gives fn's value and gradients", "[model][checkpoint]") {
  at::manual_seed(1);
  const at::Tensor w = at::randn({5}, at::kDouble).set_requires_grad(true);
  const at::Tensor x0 = at::randn({3, 5}, at::kDouble).set_requires_grad(true);
  int calls = 0;
  Block fn = [w, &calls](const at::Tensor& x) {
    ++calls;
    return (x * w).sin() * x;
  };
  const at::Tensor x = x0 * 2;  // not a leaf: the gradient must flow on to x0

  at::Tensor plain = fn(x);
  plain.pow(2).sum().backward();
  const at::Tensor gw = w.grad().clone(), gx = x0.grad().clone();
  w.mutable_grad().reset();
  x0.mutable_grad().reset();

  calls = 0;
  at::Tensor ckpt = checkpointed(fn, x, {w});
  CHECK(ckpt.equal(plain));
  CHECK(ckpt.grad_fn() != nullptr);
  CHECK(calls == 1);
  ckpt.pow(2).sum().backward();
  CHECK(calls == 2);  // rerun in backward
  CHECK(w.grad().equal(gw));
  CHECK(x0.grad().equal(gx));

  at::NoGradGuard no_grad;
  CHECK(checkpointed(fn, x, {w}).grad_fn() == nullptr);
}

TEST_CASE("model checkpoint: per-layer checkpointing leaves the decoder's values and LoRA gradients unchanged",
          "[model][checkpoint]") {
  // Qwen2-MoE: the recomputed layer routes its tokens to the same experts again; DeepSeek-V3 with every projection of
  // its latent attention adapted.
  const auto kind = GENERATE(abmll::test::TinyModel::qwen2, abmll::test::TinyModel::qwen2_moe,
                             abmll::test::TinyModel::deepseek_v3);
  INFO(abmll::test::to_string(kind));
  ScratchDir dir;
  const Decoder decoder = abmll::test::load_tiny_model(dir.path(), kind, at::kDouble);
  const ModelConfig& c = decoder.config();

  LoraSettings s;
  s.rank = 2;
  s.alpha = 4;
  s.dropout = 0.3;
  const std::vector<Projection> attention = model_projections(c);  // (a mixture of experts adapts only these)
  s.targets = c.moe.num_experts > 0
                  ? std::set<Projection>(attention.begin(), attention.end())
                  : std::set<Projection>{Projection::k, Projection::v, Projection::o, Projection::gate, Projection::up};
  at::manual_seed(12);
  // Sampled factors, as ABMLL uses: A = mu + sigma * eps, with mu and sigma the leaves that get the gradients. The
  // graph from the leaves to the factors is built anew for each run (backward frees it).
  struct Sampled {
    LinearSite site;
    std::vector<at::Tensor> mu, sigma, eps;  // [A, B] each
  };
  std::vector<Sampled> sampled;
  std::vector<at::Tensor> leaves;
  for (const LinearSite& site : lora_sites(c, s)) {
    const auto shape = projection_shape(c, site.projection);
    Sampled x{site, {}, {}, {}};
    for (const auto& dims : {std::vector<int64_t>{2, s.rank, shape[1]}, std::vector<int64_t>{2, shape[0], s.rank}}) {
      x.mu.push_back((at::randn(dims, at::kDouble) * 0.3).set_requires_grad(true));
      x.sigma.push_back((at::randn(dims, at::kDouble).abs() * 0.1).set_requires_grad(true));
      x.eps.push_back(at::randn(dims, at::kDouble));
      leaves.push_back(x.mu.back());
      leaves.push_back(x.sigma.back());
    }
    sampled.push_back(std::move(x));
  }
  BatchedLora lora(s, 2);
  auto sample = [&] {
    for (const Sampled& x : sampled)
      lora.set_factors(x.site, {x.mu[0] + x.sigma[0] * x.eps[0], x.mu[1] + x.sigma[1] * x.eps[1]});
  };
  lora.set_training(true, 99);
  const std::vector<ScoringItem> items = {{{3, 17, 42}, {8, 1}, 1}, {{5}, {9, 11, 2, 7}, 0}, {{4, 4}, {49}, 0}};

  int64_t recomputed_layers = 0;  // checkpoint nodes in the last run's graph
  auto run = [&](bool checkpoint, int64_t layers = -1) {
    sample();
    ScoringOptions options;
    options.forward.checkpoint_layers = checkpoint;
    options.forward.checkpointed_layers = layers;
    const at::Tensor score = score_continuations(decoder, items, &lora, options).log_prob;
    recomputed_layers = count_nodes(score.grad_fn().get(), "Checkpoint");
    score.sum().backward();
    std::vector<at::Tensor> grads;
    for (const auto& t : leaves) grads.push_back(t.grad().clone()), t.mutable_grad().reset();
    return std::pair{score.detach(), grads};
  };
  const auto [plain, plain_grads] = run(false);
  CHECK(recomputed_layers == 0);
  const auto [ckpt, ckpt_grads] = run(true);
  CHECK(recomputed_layers == 2);  // both layers
  CHECK(ckpt.equal(plain));
  double worst = 0, largest = 0;
  for (std::size_t k = 0; k < leaves.size(); ++k) {
    worst = std::max(worst, (ckpt_grads[k] - plain_grads[k]).abs().max().item<double>());
    largest = std::max(largest, plain_grads[k].abs().max().item<double>());
  }
  WARN("checkpointed vs plain LoRA gradients: max abs diff " << worst << " (gradients up to " << largest << ")");
  CHECK(largest > 1e-3);
  CHECK(worst < 1e-12);
  // The policy "first layer only" (the tiny model has two): the same values and gradients.
  const auto [first, first_grads] = run(true, 1);
  CHECK(recomputed_layers == 1);
  CHECK(first.equal(plain));
  double worst_first = 0;
  for (std::size_t k = 0; k < leaves.size(); ++k)
    worst_first = std::max(worst_first, (first_grads[k] - plain_grads[k]).abs().max().item<double>());
  CHECK(worst_first < 1e-12);
}

TEST_CASE("model checkpoint: second-order gradients through checkpointed layers and chunked scoring are exact",
          "[model][checkpoint][scoring]") {
  ScratchDir dir;
  const Decoder decoder = abmll::test::load_tiny_model(dir.path(), abmll::test::TinyModel::llama31, at::kDouble);
  const ModelConfig& c = decoder.config();
  LoraSettings s;
  s.rank = 2;
  s.alpha = 4;
  s.targets = {Projection::q, Projection::up};
  at::manual_seed(21);
  BatchedLora lora(s, 1);
  std::vector<at::Tensor> a_factors, b_factors;
  for (const LinearSite& site : lora_sites(c, s)) {
    const auto shape = projection_shape(c, site.projection);
    a_factors.push_back((at::randn({1, s.rank, shape[1]}, at::kDouble) * 0.3).set_requires_grad(true));
    b_factors.push_back((at::randn({1, shape[0], s.rank}, at::kDouble) * 0.3).set_requires_grad(true));
    lora.set_factors(site, {a_factors.back(), b_factors.back()});
  }
  const std::vector<ScoringItem> items = {{{3, 17, 42}, {8, 1}, 0}, {{5}, {9, 11, 2, 7}, 0}};

  // A mixed second derivative, as second-order meta-gradients need: the squared norm of d NLL / d B, differentiated
  // with respect to A. The reference computes the NLL from Decoder::logits and a plain log_softmax.
  auto second_order = [&](std::function<at::Tensor()> nll_fn) {
    const at::Tensor nll = nll_fn();
    const auto grads = torch::autograd::grad({nll}, b_factors, {}, /*retain_graph=*/true, /*create_graph=*/true);
    at::Tensor norm = at::zeros({}, at::kDouble);
    for (const auto& g : grads) norm = norm + g.pow(2).sum();
    return torch::autograd::grad({norm}, a_factors);
  };
  ForwardOptions twice;
  twice.double_backward = true;
  const auto reference = second_order([&] {
    at::Tensor nll = at::zeros({}, at::kDouble);
    for (const auto& item : items) {
      std::vector<int64_t> ids = item.prompt;
      ids.insert(ids.end(), item.continuation.begin(), item.continuation.end());
      const at::Tensor lsm = at::log_softmax(
          decoder.logits(decoder.forward(at::tensor(ids, at::kLong).view({1, -1}), at::Tensor(), &lora, twice))[0], -1);
      for (std::size_t j = 0; j < item.continuation.size(); ++j)
        nll = nll - lsm[static_cast<int64_t>(item.prompt.size() + j) - 1][item.continuation[j]];
    }
    return nll;
  });
  for (bool checkpoint : {false, true}) {
    INFO("checkpoint_layers " << checkpoint << " (ignored with double_backward)");
    ScoringOptions options;
    options.forward = twice;
    options.forward.checkpoint_layers = checkpoint;
    options.max_chunk_bytes = 3 * 50 * 8;  // float64 rows: 3 rows per chunk
    const auto got = second_order([&] { return -score_continuations(decoder, items, &lora, options).log_prob.sum(); });
    double worst = 0, largest = 0;
    for (std::size_t k = 0; k < reference.size(); ++k) {
      worst = std::max(worst, (got[k] - reference[k]).abs().max().item<double>());
      largest = std::max(largest, reference[k].abs().max().item<double>());
    }
    WARN("second order through chunked scoring vs plain log_softmax: max abs diff " << worst << " (values up to "
                                                                                      << largest << ")");
    CHECK(largest > 1e-3);
    CHECK(worst < 1e-10 * std::max(1.0, largest));
  }
  // Checkpointed layers refuse a differentiable backward rather than give wrong second derivatives.
  ScoringOptions checkpointed_only;
  checkpointed_only.forward.checkpoint_layers = true;
  CHECK_THROWS(
      second_order([&] { return -score_continuations(decoder, items, &lora, checkpointed_only).log_prob.sum(); }));
}

TEST_CASE("model checkpoint: each retry after running out of memory halves the layers that keep activations",
          "[model][checkpoint]") {
  ForwardOptions options;  // no checkpointing: all 32 layers keep their activations
  std::vector<int64_t> kept{layers_keeping_activations(options, 32)};
  while (const auto more = with_more_recomputation(options, 32)) {
    CHECK(more->checkpoint_layers);
    options = *more;
    kept.push_back(layers_keeping_activations(options, 32));
  }
  CHECK(kept == std::vector<int64_t>{32, 16, 8, 4, 2, 1, 0});
  CHECK(options.checkpointed_layers == -1);  // the last policy recomputes every layer

  ForwardOptions partial;
  partial.checkpoint_layers = true;
  partial.checkpointed_layers = 9;  // 23 of 32 keep theirs
  CHECK(layers_keeping_activations(partial, 32) == 23);
  CHECK(with_more_recomputation(partial, 32)->checkpointed_layers == 21);  // 11 keep theirs
  partial.checkpointed_layers = 40;  // more than there are: every layer recomputed
  CHECK(layers_keeping_activations(partial, 32) == 0);
  CHECK_FALSE(with_more_recomputation(partial, 32));

  ForwardOptions second_order;  // checkpointing does not apply when differentiating twice
  second_order.checkpoint_layers = true;
  second_order.double_backward = true;
  CHECK(layers_keeping_activations(second_order, 32) == 32);
  CHECK_FALSE(with_more_recomputation(second_order, 32));
}
