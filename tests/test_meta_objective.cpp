// The ABMLL objective on a toy likelihood (the NLL of a task is the squared distance between a sample of the adapted
// layer's weight update and the task's target, per split), where everything is cheap enough to check by finite
// differences in float64. Every test runs for both variational families (factor; weight with both scale forms): the
// toy reads the sampled update through the adapter seam, delta(e_i) = column i of the update, so the objective sees
// each family exactly as the LLM does.
#include <catch2/catch.hpp>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include "meta/abmll_objective.h"
#include "meta/data_parallel.h"
#include "meta/lora_posterior.h"
#include "meta/task_noise.h"
#include "tiny_model.h"

using namespace abmll;

namespace {

model::ModelConfig toy_config() { return test::small_model_config(4, 6, 1, 2, 1, 10); }

struct Toy {
  meta::LoraPosterior theta;
  std::map<model::LinearSite, at::Tensor> support_targets, query_targets;  // [G, O, I]
  int64_t tasks = 3;

  at::Tensor nll(model::LinearAdapter& adapter, int64_t samples, meta::Split split) const {
    const int64_t groups = tasks * samples;
    adapter.set_group_of_sequence(at::arange(groups, at::kLong));
    at::Tensor total = at::zeros({tasks}, at::kDouble);
    for (const auto& [site, target] : support_targets) {
      const int64_t in = target.size(2), out = target.size(1);
      // One "sequence" per group whose tokens are the unit vectors e_1 ... e_I: delta [G*S, I, O] is W^T.
      const at::Tensor eye = at::eye(in, at::kDouble).unsqueeze(0).expand({groups, in, in});
      const at::Tensor w = adapter.delta(eye, site).transpose(1, 2).reshape({tasks, samples, out, in});
      const at::Tensor& t = (split == meta::Split::support ? support_targets : query_targets).at(site);
      total = total + (w - t.unsqueeze(1)).pow(2).sum({2, 3}).mean(1);
    }
    return total;
  }
};

enum class Family { factor, weight_linear, weight_softplus };
const char* name(Family f) {
  return f == Family::factor ? "factor" : f == Family::weight_linear ? "weight, linear" : "weight, softplus";
}
constexpr Family kFamilies[] = {Family::factor, Family::weight_linear, Family::weight_softplus};

Toy make_toy(Family family) {
  model::LoraSettings lora;
  lora.rank = 2;
  lora.alpha = 2;  // s = 1
  lora.targets = {model::Projection::q, model::Projection::v};
  const auto sites = model::lora_sites(toy_config(), lora);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  meta::LoraPosterior theta;
  if (family == Family::factor) {
    theta = meta::LoraPosterior(meta::FactorGaussian::initial_prior(sites, toy_config(), 2, 0.2, 1e-4, at::kCPU, gen),
                                lora);
  } else {
    const WeightScale kind = family == Family::weight_linear ? WeightScale::linear : WeightScale::softplus;
    theta = meta::LoraPosterior(
        meta::WeightGaussian::initial_prior(sites, toy_config(), 2, {kind, 1.0, 1e-4}, 0.2, at::kCPU, gen), lora);
  }
  Toy toy;
  // float64, and non-zero B means so every parameter has a gradient (the scale factors are moved less, so that a
  // linear scale stays away from zero where the floor's kink would spoil finite differences).
  std::vector<at::Tensor> params;
  at::manual_seed(2);
  const auto names = theta.tensor_names();
  for (size_t i = 0; i < names.size(); ++i) {
    const at::Tensor t = theta.tensors()[i];
    const bool scale = names[i].find("sigma") != std::string::npos;
    params.push_back(
        (t.detach().to(at::kDouble) + (scale ? 0.02 : 0.1) * at::randn(t.sizes(), at::kDouble)).requires_grad_(true));
  }
  toy.theta = theta.with_tensors(params);
  for (const auto& [site, f] : toy.theta.means()) {
    const std::vector<int64_t> shape = {toy.tasks, f.b.size(1), f.a.size(2)};
    toy.support_targets[site] = at::randn(shape, at::kDouble);
    toy.query_targets[site] = toy.support_targets[site] + 0.3 * at::randn(shape, at::kDouble);
  }
  return toy;
}

meta::NllFunction nll_of(const Toy& toy) {
  return [&toy](model::LinearAdapter& a, int64_t s, meta::Split split) { return toy.nll(a, s, split); };
}

// Task g's noise: a generator seeded 77 + g (fresh for every call: the same noise every call).
meta::TaskNoise toy_noise(int64_t first, int64_t count) {
  std::vector<std::uint64_t> seeds;
  for (int64_t g = first; g < first + count; ++g) seeds.push_back(77 + static_cast<std::uint64_t>(g));
  return meta::noise_from_seeds(seeds);
}

meta::MetaGradient run(const Toy& toy, const meta::InnerLoop& inner, const meta::OuterObjective& outer,
                       int64_t first_task = 0) {
  return meta::abmll_meta_gradient(toy.theta, toy.tasks, nll_of(toy), inner, outer, toy_noise(first_task, toy.tasks));
}

// Tasks [first, first + count) of `toy`, as a toy of their own (what one rank of a data-parallel run holds).
Toy slice_of(const Toy& toy, int64_t first, int64_t count) {
  Toy out = toy;
  out.tasks = count;
  for (auto* targets : {&out.support_targets, &out.query_targets})
    for (auto& [site, t] : *targets) t = t.narrow(0, first, count);
  return out;
}

}  // namespace

TEST_CASE("second-order meta-gradient matches finite differences", "[meta]") {
  for (Family family : kFamilies) {
    INFO("family " << name(family));
    Toy toy = make_toy(family);
    meta::InnerLoop inner{3, 0.05, InnerOptimizer::sgd, false, 2, 0.5};
    meta::OuterObjective outer{0.5, 0.1, 10, /*second_order=*/true};
    for (InnerOptimizer opt : {InnerOptimizer::sgd, InnerOptimizer::adam}) {
      inner.optimizer = opt;
      // The linear scale takes smaller SGD steps: where the NLL's step pulls an entry of S_q towards 0, the KL's
      // -1/S_q term throws it far out on the next step (softplus damps this by its slope), and the toy diverges.
      inner.lr = opt == InnerOptimizer::sgd && family != Family::weight_linear ? 0.05 : 0.01;
      const meta::MetaGradient analytic = run(toy, inner, outer);
      const auto params = toy.theta.tensors();
      double worst = 0;
      for (size_t i = 0; i < params.size(); ++i) {
        for (int64_t j : {int64_t(0), params[i].numel() - 1}) {
          const double h = 1e-6;
          at::Tensor flat = params[i].detach().view({-1});
          const double saved = flat[j].item<double>();
          flat[j] = saved + h;
          const double up = run(toy, inner, outer).outer_loss;
          flat[j] = saved - h;
          const double down = run(toy, inner, outer).outer_loss;
          flat[j] = saved;
          const double numeric = (up - down) / (2 * h);
          const double value = analytic.grads[i].reshape({-1})[j].item<double>();
          worst = std::max(worst, std::abs(numeric - value) / std::max(1.0, std::abs(numeric)));
        }
      }
      INFO("inner optimiser " << (opt == InnerOptimizer::sgd ? "sgd" : "adam") << ": largest relative difference "
                              << worst);
      CHECK(worst < 1e-6);
    }
  }
}

TEST_CASE("with no inner steps first- and second-order gradients agree", "[meta]") {
  for (Family family : kFamilies) {
    INFO("family " << name(family));
    Toy toy = make_toy(family);
    meta::InnerLoop inner{0, 0.05, InnerOptimizer::sgd, false, 1, 0.5};
    meta::OuterObjective first{0.5, 0.1, 10, false}, second{0.5, 0.1, 10, true};
    const auto a = run(toy, inner, first), b = run(toy, inner, second);
    CHECK(a.outer_loss == Approx(b.outer_loss).epsilon(1e-12));
    for (size_t i = 0; i < a.grads.size(); ++i) CHECK((a.grads[i] - b.grads[i]).abs().max().item<double>() < 1e-12);
  }
}

TEST_CASE("first-order gradient passes the query gradient at phi^K through to theta", "[meta]") {
  // beta = gamma = 0: theta's gradient is exactly the sum over tasks of dNLL_query/dphi_i^K / G.
  for (Family family : kFamilies) {
    INFO("family " << name(family));
    Toy toy = make_toy(family);
    meta::InnerLoop inner{2, 0.05, InnerOptimizer::sgd, false, 1, 0.0};
    meta::OuterObjective outer{0.0, 0.0, 10, false};
    const auto result = run(toy, inner, outer);
    const meta::TaskNoise noise = toy_noise(0, toy.tasks);
    const meta::LoraPosterior phi = meta::infer_posteriors(toy.theta, toy.tasks, nll_of(toy), inner, false, noise);
    const at::Tensor q = toy.nll(*phi.sample(1, noise), 1, meta::Split::query).mean();
    const auto g = phi.group_sums(torch::autograd::grad({q}, phi.inner_tensors()));
    REQUIRE(g.size() == result.grads.size());
    for (size_t i = 0; i < g.size(); ++i) CHECK((g[i] - result.grads[i]).abs().max().item<double>() < 1e-12);
  }
}

TEST_CASE("the inner loop lowers the support NLL and runs are reproducible", "[meta]") {
  for (Family family : kFamilies) {
    INFO("family " << name(family));
    Toy toy = make_toy(family);
    meta::InnerLoop inner{5, 0.05, InnerOptimizer::sgd, true, 1, 1e-3};
    meta::OuterObjective outer{1e-3, 1e-3, 10, false};
    const auto a = run(toy, inner, outer), b = run(toy, inner, outer);
    REQUIRE(a.support_nll.size() == 5);
    CHECK(a.support_nll.back() < a.support_nll.front());
    CHECK(a.outer_loss == b.outer_loss);
    for (size_t i = 0; i < a.grads.size(); ++i) CHECK(at::equal(a.grads[i], b.grads[i]));
  }
}

TEST_CASE("ranks' slices of a meta-batch, weighted by their share, give the meta-batch's gradient", "[meta][dist]") {
  // What data-parallel meta-training relies on (meta/data_parallel.h): each task's noise is its own, so a slice
  // of tasks computes exactly what those tasks compute inside the whole meta-batch, and sum_r (T_r / T) * result_r
  // is the meta-batch's result, the hyperprior term included. Here 3 tasks on 2 "ranks" (2 + 1), in float64.
  for (const auto& [family, second_order] : {std::pair{Family::factor, false}, std::pair{Family::factor, true},
                                             std::pair{Family::weight_linear, false},
                                             std::pair{Family::weight_softplus, true}}) {
    INFO(name(family) << ", " << (second_order ? "second" : "first") << " order");
    const Toy toy = make_toy(family);
    meta::InnerLoop inner{2, family == Family::weight_linear ? 0.01 : 0.05, InnerOptimizer::sgd, false, 2, 0.5};
    meta::OuterObjective outer{0.5, 0.1, 10, second_order};
    const meta::MetaGradient whole = run(toy, inner, outer);
    std::vector<at::Tensor> grads(whole.grads.size());
    double loss = 0, query = 0, kl = 0;
    std::vector<double> support(whole.support_nll.size(), 0.0);
    for (int rank = 0; rank < 2; ++rank) {
      const meta::TaskSlice slice = meta::task_slice(toy.tasks, rank, 2);
      CHECK(slice.count == (rank == 0 ? 2 : 1));
      const meta::MetaGradient part = run(slice_of(toy, slice.begin, slice.count), inner, outer, slice.begin);
      const double w = double(slice.count) / double(toy.tasks);
      for (size_t i = 0; i < grads.size(); ++i) grads[i] = rank == 0 ? w * part.grads[i] : grads[i] + w * part.grads[i];
      loss += w * part.outer_loss, query += w * part.query_nll, kl += w * part.kl;
      for (size_t k = 0; k < support.size(); ++k) support[k] += w * part.support_nll[k];
      CHECK(part.hyperprior == whole.hyperprior);
    }
    CHECK(loss == Approx(whole.outer_loss).epsilon(1e-12));
    CHECK(query == Approx(whole.query_nll).epsilon(1e-12));
    CHECK(kl == Approx(whole.kl).epsilon(1e-12));
    for (size_t k = 0; k < support.size(); ++k) CHECK(support[k] == Approx(whole.support_nll[k]).epsilon(1e-12));
    double worst = 0;
    for (size_t i = 0; i < grads.size(); ++i)
      worst = std::max(worst, (grads[i] - whole.grads[i]).abs().max().item<double>() /
                                  std::max(1e-300, whole.grads[i].abs().max().item<double>()));
    INFO("largest relative gradient difference " << worst);
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("task slices cover a meta-batch once, contiguously, balanced", "[meta][dist]") {
  for (int64_t tasks : {1, 2, 5, 8, 13}) {
    for (int world = 1; world <= tasks && world <= 8; ++world) {
      int64_t next = 0;
      for (int rank = 0; rank < world; ++rank) {
        const meta::TaskSlice s = meta::task_slice(tasks, rank, world);
        CHECK(s.begin == next);
        CHECK((s.count == tasks / world || s.count == tasks / world + 1));
        next += s.count;
      }
      CHECK(next == tasks);
    }
  }
  CHECK(meta::task_slice(5, 1, 2).begin == 3);  // the first tasks mod world ranks take one more
  CHECK_THROWS(meta::task_slice(2, 0, 3));      // fewer tasks than ranks
}
