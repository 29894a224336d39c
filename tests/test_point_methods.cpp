// The point-estimate baselines' meta-gradients (lora, fomaml, reptile) on a toy likelihood whose gradients are
// written out by hand: the NLL of task g is ||B_g A_g - T_g||^2 per adapted site, with targets T per split (the
// `all` split is the mean of the support and query NLLs). The inner loop is re-implemented here with those
// closed-form gradients, independently of autograd and of inner_descent.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "meta/point_methods.h"
#include "tiny_model.h"

using namespace abmll;

namespace {

model::ModelConfig toy_config() { return test::small_model_config(4, 6, 1, 2, 1, 10); }

struct Toy {
  meta::PointLora theta;
  std::map<model::LinearSite, at::Tensor> support, query;  // targets [G, O, I]
  int64_t tasks = 3;

  const at::Tensor& target(const model::LinearSite& site, meta::Split split) const {
    return (split == meta::Split::query ? query : support).at(site);
  }
  // The adapter is the BatchedLora the baselines build; its factors are read directly.
  at::Tensor nll(model::LinearAdapter& adapter, int64_t, meta::Split split) const {
    if (split == meta::Split::all) return (nll(adapter, 1, meta::Split::support) + nll(adapter, 1, meta::Split::query)) / 2;
    at::Tensor total = at::zeros({tasks}, at::kDouble);
    for (const auto& [site, f] : dynamic_cast<model::BatchedLora&>(adapter).all_factors())
      total = total + (at::matmul(f.b, f.a) - target(site, split)).pow(2).sum({1, 2});
    return total;
  }
};

Toy make_toy() {
  model::LoraSettings lora;
  lora.rank = 2;
  lora.targets = {model::Projection::q, model::Projection::v};
  Toy toy;
  const auto init = meta::PointLora::initial(toy_config(), lora, at::kCPU, at::make_generator<at::CPUGeneratorImpl>(1));
  at::manual_seed(3);
  std::vector<at::Tensor> params;  // float64, and B != 0 so that A has a gradient
  for (const auto& t : init.tensors())
    params.push_back((t.detach().to(at::kDouble) + 0.3 * at::randn(t.sizes(), at::kDouble)).requires_grad_(true));
  toy.theta = init.with_tensors(params);
  for (const auto& [site, f] : toy.theta.sites()) {
    const std::vector<int64_t> shape = {toy.tasks, f.b.size(0), f.a.size(1)};
    toy.support[site] = at::randn(shape, at::kDouble);
    toy.query[site] = toy.support[site] + 0.3 * at::randn(shape, at::kDouble);
  }
  return toy;
}

// Closed-form gradients of ||B A - T||^2 for task-stacked A [G, R, I], B [G, O, R]: (dA, dB).
std::pair<at::Tensor, at::Tensor> toy_grads(const at::Tensor& a, const at::Tensor& b, const at::Tensor& t) {
  const at::Tensor r = 2 * (at::matmul(b, a) - t);
  return {at::matmul(b.transpose(1, 2), r), at::matmul(r, a.transpose(1, 2))};
}

// K SGD steps per task on `split`, site by site (the toy's sites do not interact). Per site: (A, B) [G, ...].
std::map<model::LinearSite, std::pair<at::Tensor, at::Tensor>> manual_sgd(const Toy& toy, int64_t steps, double lr,
                                                                         meta::Split split) {
  std::map<model::LinearSite, std::pair<at::Tensor, at::Tensor>> out;
  for (const auto& [site, f] : toy.theta.sites()) {
    at::Tensor a = f.a.detach().unsqueeze(0).repeat({toy.tasks, 1, 1});
    at::Tensor b = f.b.detach().unsqueeze(0).repeat({toy.tasks, 1, 1});
    for (int64_t k = 0; k < steps; ++k) {
      at::Tensor da, db;
      if (split == meta::Split::all) {
        auto [sa, sb] = toy_grads(a, b, toy.support.at(site));
        auto [qa, qb] = toy_grads(a, b, toy.query.at(site));
        da = (sa + qa) / 2, db = (sb + qb) / 2;
      } else {
        std::tie(da, db) = toy_grads(a, b, toy.target(site, split));
      }
      a = a - lr * da, b = b - lr * db;
    }
    out[site] = {a, b};
  }
  return out;
}

double max_diff(const at::Tensor& x, const at::Tensor& y) { return (x - y).abs().max().item<double>(); }

}  // namespace

TEST_CASE("point-estimate meta-gradients equal hand-derived ones on a toy likelihood", "[meta][baselines]") {
  const Toy toy = make_toy();
  auto nll = [&toy](model::LinearAdapter& a, int64_t s, meta::Split split) { return toy.nll(a, s, split); };
  const meta::InnerDescent inner{3, 0.02, InnerOptimizer::sgd};
  const std::vector<at::Tensor> theta = toy.theta.tensors();

  SECTION("lora: the gradient of the mean NLL over support and query, at theta") {
    const auto g = meta::point_meta_gradient(Method::lora, toy.theta, toy.tasks, nll, inner);
    size_t i = 0;
    for (const auto& [site, f] : toy.theta.sites()) {
      const at::Tensor a = f.a.detach().unsqueeze(0).repeat({toy.tasks, 1, 1});
      const at::Tensor b = f.b.detach().unsqueeze(0).repeat({toy.tasks, 1, 1});
      auto [sa, sb] = toy_grads(a, b, toy.support.at(site));
      auto [qa, qb] = toy_grads(a, b, toy.query.at(site));
      CHECK(max_diff(g.grads[i], ((sa + qa) / 2).mean(0)) < 1e-12);
      CHECK(max_diff(g.grads[i + 1], ((sb + qb) / 2).mean(0)) < 1e-12);
      i += 2;
    }
    CHECK_FALSE(g.query_nll);
    CHECK(g.support_nll.empty());
  }

  SECTION("fomaml: the query gradient at each task's adapted LoRA, averaged over tasks") {
    const auto g = meta::point_meta_gradient(Method::fomaml, toy.theta, toy.tasks, nll, inner);
    const auto adapted = manual_sgd(toy, inner.steps, inner.lr, meta::Split::support);
    size_t i = 0;
    for (const auto& [site, ab] : adapted) {
      auto [qa, qb] = toy_grads(ab.first, ab.second, toy.query.at(site));
      CHECK(max_diff(g.grads[i], qa.mean(0)) < 1e-10);
      CHECK(max_diff(g.grads[i + 1], qb.mean(0)) < 1e-10);
      i += 2;
    }
    REQUIRE(g.support_nll.size() == 3);
    CHECK(g.support_nll.back() < g.support_nll.front());  // the inner steps descend
    REQUIRE(g.query_nll);
    CHECK(*g.query_nll == Approx(g.outer_loss));
  }

  SECTION("reptile: theta minus the mean of the tasks' LoRAs after K steps on support and query") {
    const auto g = meta::point_meta_gradient(Method::reptile, toy.theta, toy.tasks, nll, inner);
    const auto adapted = manual_sgd(toy, inner.steps, inner.lr, meta::Split::all);
    size_t i = 0;
    for (const auto& [site, ab] : adapted) {
      CHECK(max_diff(g.grads[i], theta[i].detach() - ab.first.mean(0)) < 1e-10);
      CHECK(max_diff(g.grads[i + 1], theta[i + 1].detach() - ab.second.mean(0)) < 1e-10);
      i += 2;
    }
  }

  SECTION("test-time adaptation is the same inner loop on the support set") {
    const meta::PointLora phi = meta::adapt_point_lora(toy.theta, toy.tasks, nll, inner);
    const auto adapted = manual_sgd(toy, inner.steps, inner.lr, meta::Split::support);
    size_t i = 0;
    const auto tensors = phi.tensors();
    for (const auto& [site, ab] : adapted) {
      CHECK(max_diff(tensors[i], ab.first) < 1e-10);
      CHECK(max_diff(tensors[i + 1], ab.second) < 1e-10);
      i += 2;
    }
  }
}

TEST_CASE("PointLora starts as PEFT does and expands to groups without copying the prior's values", "[baselines]") {
  model::LoraSettings lora;
  lora.rank = 3;
  lora.targets = {model::Projection::v};
  const auto p = meta::PointLora::initial(toy_config(), lora, at::kCPU, at::make_generator<at::CPUGeneratorImpl>(5));
  const auto& f = p.sites().begin()->second;
  CHECK(f.b.abs().max().item<double>() == 0);  // B = 0: the adapter starts as the base model
  CHECK(f.a.abs().max().item<double>() <= 1.0 / std::sqrt(4.0));
  const auto expanded = p.factors(4);
  CHECK(expanded.begin()->second.a.size(0) == 4);
  CHECK(max_diff(expanded.begin()->second.a[3], f.a) == 0);
  CHECK(p.names() == std::vector<std::string>{"model.layers.0.self_attn.v_proj.lora_A",
                                              "model.layers.0.self_attn.v_proj.lora_B"});
  CHECK_THROWS(p.copies(2, false).copies(2, false));
}
